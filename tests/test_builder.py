"""Building databases: exact pixels, the pyramid, skipped files, resume after interruption, argument checks."""
import io
import json
import shutil
import zipfile

import lmdb
import numpy as np
import pytest
from PIL import Image

from alae.datasets import DatasetError, LMDBDataset, build_database
from alae.datasets.image_records import ImageRecordMaker


def block_mean_level(image: np.ndarray, resolution: int) -> np.ndarray:
    """Independent reference pyramid level: float64 block mean of the max level, rounded half to even."""
    factor = image.shape[0] // resolution
    blocks = image.astype(np.float64).reshape(resolution, factor, resolution, factor, 3)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


def stored_image(path, resolution: int, index: int) -> np.ndarray:
    """Image `index` read back through the loader, as uint8 [R, R, 3]."""
    return LMDBDataset(path, resolution)[index].permute(1, 2, 0).numpy()


def all_records(path) -> dict[bytes, bytes]:
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        records = dict(txn.cursor())
    env.close()
    return records


def write_png(path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def folder_with_bad_files(tmp_path):
    """Six random 16x16 PNGs, a truncated PNG and a text file named .png."""
    folder = tmp_path / "images"
    rng = np.random.default_rng(1)
    for i in range(6):
        write_png(folder / f"img_{i}.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    good = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(good, format="PNG")
    (folder / "img_2_truncated.png").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    (folder / "img_4_text.png").write_text("this is not a picture")
    return folder


def test_ffhq_samples_round_trip_exactly_with_an_independent_pyramid(ffhq_samples_dir, tmp_path):
    summary = build_database(str(ffhq_samples_dir), tmp_path / "db", limit=12, workers=2)
    assert summary.count == 12 and summary.resolutions == [4, 8, 16, 32, 64, 128] and not summary.skipped
    names = sorted(p.name for p in ffhq_samples_dir.glob("*.png"))[:12]
    dataset = LMDBDataset(tmp_path / "db", 128)
    for index in (0, 5, 11):
        assert dataset.source_name(index) == names[index]
        original = np.asarray(Image.open(ffhq_samples_dir / names[index]).convert("RGB"))
        np.testing.assert_array_equal(stored_image(tmp_path / "db", 128, index), original)
        for resolution in summary.resolutions[:-1]:
            np.testing.assert_array_equal(stored_image(tmp_path / "db", resolution, index), block_mean_level(original, resolution))


def test_lfw_faces_are_upscaled_with_lanczos_and_pyramided(tmp_path):
    from skimage.data import lfw_subset

    summary = build_database("lfw", tmp_path / "db", max_resolution=32, workers=0)
    assert summary.count == 100 and summary.resolutions == [4, 8, 16, 32]
    faces = lfw_subset()[:100]
    for index in (0, 99):
        gray = Image.fromarray(np.rint(faces[index] * 255).astype(np.uint8)).convert("RGB")
        expected = np.asarray(gray.resize((32, 32), Image.Resampling.LANCZOS))
        np.testing.assert_array_equal(stored_image(tmp_path / "db", 32, index), expected)
        for resolution in (4, 8, 16):
            np.testing.assert_array_equal(stored_image(tmp_path / "db", resolution, index), block_mean_level(expected, resolution))


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_forced_encodings_store_the_same_pixels(folder_with_bad_files, tmp_path, encoding):
    build_database(str(folder_with_bad_files), tmp_path / "auto", workers=0)
    summary = build_database(str(folder_with_bad_files), tmp_path / encoding, encoding=encoding, workers=0)
    assert set(summary.record_encodings.values()) == {encoding}
    for resolution in summary.resolutions:
        assert stored_image(tmp_path / encoding, resolution, 3).tobytes() == stored_image(tmp_path / "auto", resolution, 3).tobytes()


def test_corrupt_files_are_skipped_listed_and_do_not_shift_names(folder_with_bad_files, tmp_path):
    summary = build_database(str(folder_with_bad_files), tmp_path / "db", workers=2)
    assert summary.count == 6
    assert [name for name, _ in summary.skipped] == ["img_2_truncated.png", "img_4_text.png"]
    assert "truncated" in summary.skipped[0][1]
    dataset = LMDBDataset(tmp_path / "db", 16)
    assert [dataset.source_name(i) for i in range(6)] == [f"img_{i}.png" for i in range(6)]
    assert dataset.metadata["skipped"] == [list(s) for s in summary.skipped]


def test_zip_archive_builds_the_same_database_as_the_folder(folder_with_bad_files, tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder_with_bad_files.iterdir()):
            zf.write(path, path.name)
    build_database(str(folder_with_bad_files), tmp_path / "from_folder", workers=0)
    build_database(str(archive), tmp_path / "from_zip", workers=2)
    folder_records, zip_records = all_records(tmp_path / "from_folder"), all_records(tmp_path / "from_zip")
    meta = b"alae/meta"
    assert {k: v for k, v in folder_records.items() if k != meta} == {k: v for k, v in zip_records.items() if k != meta}


def test_interrupted_build_is_refused_then_resumes_to_the_uninterrupted_result(folder_with_bad_files, tmp_path, monkeypatch):
    for i in range(6, 20):
        shutil.copy(folder_with_bad_files / f"img_{i % 6}.png", folder_with_bad_files / f"img_{i}.png")
    options = dict(workers=0, commit_images=3)
    build_database(str(folder_with_bad_files), tmp_path / "whole", **options)

    prepare = ImageRecordMaker.__call__

    def interrupt_at_position_12(maker, item):
        if item[0] == 12:
            raise KeyboardInterrupt
        return prepare(maker, item)

    monkeypatch.setattr(ImageRecordMaker, "__call__", interrupt_at_position_12)
    with pytest.raises(KeyboardInterrupt):
        build_database(str(folder_with_bad_files), tmp_path / "resumed", **options)
    with pytest.raises(DatasetError, match="incomplete database"):
        LMDBDataset(tmp_path / "resumed", 16)
    monkeypatch.setattr(ImageRecordMaker, "__call__", prepare)

    summary = build_database(str(folder_with_bad_files), tmp_path / "resumed", **options)
    assert 0 < summary.resumed_at <= 12 and summary.count == 20 and len(summary.skipped) == 2
    assert all_records(tmp_path / "resumed") == all_records(tmp_path / "whole")


def test_rerun_of_a_complete_build_does_nothing_and_other_arguments_are_refused(folder_with_bad_files, tmp_path):
    build_database(str(folder_with_bad_files), tmp_path / "db", workers=0)
    again = build_database(str(folder_with_bad_files), tmp_path / "db", workers=0)
    assert again.already_complete and again.count == 6 and len(again.skipped) == 2
    with pytest.raises(DatasetError, match=r"other arguments \(max_resolution 16 -> 32\)"):
        build_database(str(folder_with_bad_files), tmp_path / "db", max_resolution=32, workers=0)


def test_strict_skips_images_of_the_wrong_size(tmp_path):
    write_png(tmp_path / "src" / "a.png", np.zeros((16, 16, 3), dtype=np.uint8))
    write_png(tmp_path / "src" / "b.png", np.zeros((16, 24, 3), dtype=np.uint8))
    summary = build_database(str(tmp_path / "src"), tmp_path / "db", max_resolution=16, strict=True, workers=0)
    assert summary.count == 1 and summary.skipped == [("b.png", "image is 24x16, expected 16x16 (--strict)")]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_resolution=24), "--max-res must be a power of two"),
        (dict(min_resolution=32, max_resolution=16), "larger than --max-res"),
        (dict(encoding="jpeg"), "unknown encoding"),
        (dict(limit=0), "--limit must be at least 1"),
    ],
)
def test_bad_arguments_are_refused(folder_with_bad_files, tmp_path, kwargs, message):
    with pytest.raises(DatasetError, match=message):
        build_database(str(folder_with_bad_files), tmp_path / "db", workers=0, **kwargs)


def test_destination_that_is_not_a_database_is_refused(folder_with_bad_files, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    with pytest.raises(DatasetError, match="non-empty directory"):
        build_database(str(folder_with_bad_files), tmp_path / "busy", workers=0)
    foreign = lmdb.open(str(tmp_path / "foreign"))
    with foreign.begin(write=True) as txn:
        txn.put(b"key", b"value")
    foreign.close()
    with pytest.raises(DatasetError, match="alae did not make"):
        build_database(str(folder_with_bad_files), tmp_path / "foreign", workers=0)


def test_a_source_where_nothing_is_readable_fails_clearly(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.png").write_text("nope")
    with pytest.raises(DatasetError, match="cannot infer --max-res"):
        build_database(str(tmp_path / "src"), tmp_path / "db", workers=0)
    with pytest.raises(DatasetError, match="none of the 1 images could be read"):
        build_database(str(tmp_path / "src"), tmp_path / "db", max_resolution=8, workers=0)


def test_interrupted_build_without_resume_point_is_a_clear_error(tmp_path):
    out = tmp_path / "db"
    build_database("lfw", out, max_resolution=8, workers=0)
    with lmdb.open(str(out)) as env, env.begin(write=True) as txn:
        meta = json.loads(bytes(txn.get(b"alae/meta")))
        txn.put(b"alae/meta", json.dumps({**meta, "complete": False}).encode())
    with pytest.raises(DatasetError, match="without its resume point"):
        build_database("lfw", out, max_resolution=8, workers=0)
