"""alae-align end to end, in process: crops and alignment.json for faces, no-face photos,
unreadable files, EXIF orientation and clashing names; one-line errors for bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage import data

from alae.tools.align import main

SIZE = 64
EXIF_ORIENTATION = 0x0112
ROTATE_90_CW_TO_VIEW = 6  # EXIF: the stored pixels must be turned 90 degrees clockwise for display


def landmarks_of(record: dict, file: str) -> np.ndarray:
    faces = [face for photo in record["photos"] for face in photo["faces"] if face["file"] == file]
    assert len(faces) == 1, file
    return np.array(faces[0]["landmarks"])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One alae-align run over a folder of test photos plus one more file with a clashing name."""
    root = tmp_path_factory.mktemp("align")
    photos, more = root / "photos", root / "more"
    photos.mkdir(), more.mkdir()
    astronaut = data.astronaut()
    Image.fromarray(astronaut).save(photos / "astronaut.png")
    Image.fromarray(np.concatenate([astronaut, astronaut], axis=1)).save(photos / "twice.png")
    Image.fromarray(np.tile(np.linspace(0, 255, 300).astype(np.uint8), (200, 1))).save(photos / "blank.png")
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    (photos / "notes.txt").write_text("not an image; ignored inside a folder")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CW_TO_VIEW
    Image.fromarray(np.ascontiguousarray(np.rot90(astronaut[:400]))).save(photos / "rotated.png", exif=exif)  # stored turned left
    Image.fromarray(astronaut[:, ::-1]).save(more / "astronaut.png")
    out = root / "out"
    status = main([str(photos), str(more / "astronaut.png"), "--out", str(out), "--size", str(SIZE)])
    return {"status": status, "out": out, "photos": photos, "more": more,
            "record": json.loads((out / "alignment.json").read_text())}


def test_every_face_becomes_a_crop(run, capsys):
    assert run["status"] == 0
    crops = sorted(p.name for p in run["out"].glob("*.png"))
    assert crops == ["astronaut-2_00.png", "astronaut_00.png", "rotated_00.png", "twice_00.png", "twice_01.png"]
    for name in crops:
        with Image.open(run["out"] / name) as crop:
            assert crop.size == (SIZE, SIZE) and crop.mode == "RGB"
    assert (run["out"] / "run.json").is_file()


def test_record_lists_photos_without_faces_and_unreadable_files(run):
    record = run["record"]
    assert record["no_face"] == [str(run["photos"] / "blank.png")]
    assert [u["source"] for u in record["unreadable"]] == [str(run["photos"] / "broken.png")]
    assert "cannot identify image file" in record["unreadable"][0]["reason"]
    sources = [photo["source"] for photo in record["photos"]]
    assert str(run["photos"] / "notes.txt") not in sources and len(sources) == 5
    face = record["photos"][0]["faces"][0]
    assert record["photos"][0]["source"] == str(run["photos"] / "astronaut.png") and face["file"] == "astronaut_00.png"
    assert np.array(face["landmarks"]).shape == (68, 2) and np.array(face["quad"]).shape == (4, 2)
    left, top, right, bottom = face["rect"]
    eyes = np.array(face["landmarks"])[36:48].mean(axis=0)
    assert left < eyes[0] < right and top < eyes[1] < bottom


def test_two_faces_in_one_photo_are_numbered_left_to_right(run):
    record = run["record"]
    single = landmarks_of(record, "astronaut_00.png")
    np.testing.assert_allclose(landmarks_of(record, "twice_00.png"), single, atol=3)
    np.testing.assert_allclose(landmarks_of(record, "twice_01.png"), single + [512, 0], atol=3)
    left, right = (np.asarray(Image.open(run["out"] / f"twice_0{k}.png"), np.float64) for k in (0, 1))
    assert np.abs(left - right).mean() < 3  # the same face twice, up to dlib's landmark jitter


def test_exif_orientation_is_applied(run):
    record = run["record"]
    rotated = next(photo for photo in record["photos"] if photo["source"].endswith("rotated.png"))
    assert rotated["size"] == [512, 400]  # upright: as wide as the astronaut, 400 rows tall
    np.testing.assert_allclose(landmarks_of(record, "rotated_00.png"), landmarks_of(record, "astronaut_00.png"), atol=3)


def test_clashing_stems_get_their_own_files(run):
    record = run["record"]
    mirrored = next(photo for photo in record["photos"] if photo["source"] == str(run["more"] / "astronaut.png"))
    assert [face["file"] for face in mirrored["faces"]] == ["astronaut-2_00.png"]
    # The mirrored photo's face, not a second copy of the first one.
    eye_x = landmarks_of(record, "astronaut-2_00.png")[36:48, 0].mean()
    assert abs(eye_x - (511 - landmarks_of(record, "astronaut_00.png")[36:48, 0].mean())) < 3


def test_summary_and_warnings(tmp_path, capsys):
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    assert main([str(tmp_path / "wall.png"), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "1 files, 0 faces, 1 photos without a face, 0 unreadable" in captured.out
    assert f"alae-align: warning: no face found in {tmp_path / 'wall.png'}" in captured.err


def one_line_error(capsys, alone: bool = True) -> str:
    """The error line ending stderr; `alone`: and nothing else was printed (no progress bar)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("alae-align: error: ") and (len(err) == 1 or not alone), err
    return err[-1]


def test_existing_output_folder_is_refused(tmp_path, capsys):
    Image.fromarray(data.astronaut()).save(tmp_path / "face.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main([str(tmp_path / "face.png"), "--out", str(out)]) == 1
    assert "already holds 1 entries" in one_line_error(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_missing_path_is_a_one_line_error(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere.jpg"), "--out", str(tmp_path / "out")]) == 1
    assert "no such file or folder" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_nothing_readable_is_an_error(tmp_path, capsys):
    (tmp_path / "broken.jpg").write_bytes(b"junk")
    assert main([str(tmp_path / "broken.jpg"), "--out", str(tmp_path / "out")]) == 1
    assert "none of the 1 files could be read" in one_line_error(capsys, alone=False)
    record = json.loads((tmp_path / "out" / "alignment.json").read_text())
    assert [u["source"] for u in record["unreadable"]] == [str(tmp_path / "broken.jpg")]


def test_folder_without_images_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 1
    assert "no images" in one_line_error(capsys)


def test_missing_dlib_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` now raises ImportError
    Image.fromarray(data.astronaut()).save(tmp_path / "face.png")
    assert main([str(tmp_path / "face.png"), "--out", str(tmp_path / "out")]) == 1
    assert "pip install dlib-bin" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "alae.tools.align", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--upsample" in result.stdout
