"""alae-studio without a browser: every view's reproducing command writes the studio's pixels,
W+ composition follows the tools' order, a slider move decodes one image, uploads are checked."""
import shlex

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import astronaut

from alae.editing.directions import Direction, save_direction
from alae.editing.layer_groups import layer_groups
from alae.model_files.loading import load_networks, model_fingerprint
from alae.studio.session import Studio, find_directions
from alae.studio.sources import SourceSpec
from alae.studio.uploads import upload_problem
from alae.studio.view import View, compose, reproducing_command
from alae.tools import directions as directions_tool
from alae.tools import edit, generate, mix, reconstruct

TOOLS = {"alae-edit": edit, "alae-reconstruct": reconstruct, "alae-mix": mix, "alae-generate": generate,
         "alae-directions": directions_tool}


@pytest.fixture(scope="module")
def studio(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio")
    image = astronaut()
    for k, (y, x) in enumerate([(0, 100), (120, 200)]):
        Image.fromarray(np.ascontiguousarray(image[y:y + 200, x:x + 200])).save(folder / f"p{k}.png")
    _, model = load_networks(tiny_model)
    fingerprint = model_fingerprint(model)
    rng = np.random.RandomState(3)
    for name in ("a", "b"):
        vector = rng.randn(16)
        save_direction(Direction(vector / np.linalg.norm(vector), 0.7, "fit", name, fingerprint, {}),
                       folder / "directions" / f"{name}.npz")
    found, notes = find_directions([str(folder / "directions")], str(tiny_model), fingerprint, 16)
    assert notes == []
    return Studio(model, torch.device("cpu"), str(tiny_model), found, {}), folder


def run_command(line: str, cwd, monkeypatch):
    """Run each `&&` part of a reproducing command through the tool's main, on the CPU, in `cwd`."""
    monkeypatch.chdir(cwd)
    for part in line.split(" && "):
        argv = shlex.split(part)
        assert TOOLS[argv[0]].main([*argv[1:], "--device", "cpu"]) == 0, part


def shown_pixels(studio, first, second, view):
    wplus = compose(first, second, view, studio.directions, studio.num_layers)
    return studio.render(wplus, first.key, view.noise)


def written(path):
    return np.asarray(Image.open(path))


@pytest.mark.parametrize("case", ["reconstruct", "refined", "edit", "mix-image", "mix-seed", "seed"])
def test_each_views_command_writes_the_shown_pixels(studio, tmp_path, monkeypatch, case):
    studio, folder = studio
    (tmp_path / "p0.png").write_bytes((folder / "p0.png").read_bytes())
    (tmp_path / "p1.png").write_bytes((folder / "p1.png").read_bytes())
    image = SourceSpec.image(tmp_path / "p0.png", "p0.png", refine=4 if case == "refined" else 0,
                             noise="random" if case == "refined" else "const")
    first = studio.source(SourceSpec.from_seed(5, 0.6, 3) if case == "seed" else image)
    second = {"mix-image": studio.source(SourceSpec.image(tmp_path / "p1.png", "p1.png")),
              "mix-seed": studio.source(SourceSpec.from_seed(12, 0.7, 8))}.get(case)
    view = View(strengths=(1.3, -0.7) if case == "edit" else (0.0, 0.0), edit_layers="middle",
                mix_layers="coarse" if second else "off", noise="random" if case in ("refined", "seed") else "const")
    line, where = reproducing_command(str(studio.model_path), first, second, view, studio.directions,
                                      studio.num_layers)
    assert line is not None, where
    expected_tool = {"reconstruct": "alae-reconstruct", "refined": "alae-reconstruct", "edit": "alae-edit",
                     "mix-image": "alae-mix", "mix-seed": "alae-mix", "seed": "alae-generate"}[case]
    assert line.startswith(expected_tool)
    run_command(line, tmp_path, monkeypatch)
    np.testing.assert_array_equal(written(tmp_path / where), shown_pixels(studio, first, second, view))


def test_computed_directions_are_reproduced_by_alae_directions(studio, tmp_path, monkeypatch):
    studio, folder = studio
    (tmp_path / "p0.png").write_bytes((folder / "p0.png").read_bytes())
    before = len(studio.directions)
    added = studio.add_computed("sefa", 3)
    try:
        first = studio.source(SourceSpec.image(tmp_path / "p0.png", "p0.png"))
        view = View(strengths=(0.0,) * before + (0.0, 2.0, 0.0), edit_layers="fine")
        line, where = reproducing_command(studio.model_path, first, None, view, studio.directions, studio.num_layers)
        assert line.startswith("alae-directions sefa") and "--direction=sefa/sefa01.npz=2.0" in line
        run_command(line, tmp_path, monkeypatch)
        np.testing.assert_array_equal(written(tmp_path / where), shown_pixels(studio, first, None, view))
    finally:
        del studio.directions[before:]
    assert [d.direction.attribute for d in added] == ["sefa0", "sefa1", "sefa2"]


def test_compose_follows_the_tools_order(studio, tmp_path):
    """blend (lerp), then the second's styles on the mix layers, then Σ strength·scale·vector on the edit layers."""
    studio, folder = studio
    a = studio.source(SourceSpec.image(folder / "p0.png", "p0.png"))
    b = studio.source(SourceSpec.from_seed(3, 1.0, 0))
    view = View(strengths=(2.0, -1.0), edit_layers="fine", mix_layers="coarse", blend=0.25)
    got = compose(a, b, view, studio.directions, studio.num_layers).double()
    groups = layer_groups(studio.num_layers)
    expected = a.wplus.double() + 0.25 * (b.wplus.double() - a.wplus.double())
    expected[groups["coarse"]] = b.wplus.double()[groups["coarse"]]
    offset = sum(s * d.direction.scale * torch.from_numpy(d.direction.vector)
                 for s, d in zip(view.strengths, studio.directions))
    expected[groups["fine"]] += offset
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_a_slider_move_decodes_only_the_edited_image(studio):
    studio, folder = studio
    first = studio.source(SourceSpec.image(folder / "p1.png", "p1.png"))
    assert studio.source(SourceSpec.image(folder / "p1.png", "p1.png")) is first  # encoded once
    before = studio.decodes
    shown_pixels(studio, first, None, View((0.5, 0.0)))
    shown_pixels(studio, first, None, View((0.6, 0.0)))
    assert studio.decodes == before + 2
    shown_pixels(studio, first, None, View((0.5, 0.0)))  # back to a value seen: nothing decoded
    assert studio.decodes == before + 2


def test_views_without_one_command_say_why(studio):
    studio, folder = studio
    a = studio.source(SourceSpec.image(folder / "p0.png", "p0.png"))
    b = studio.source(SourceSpec.from_seed(3, 0.7, 8))
    for view, second, reason in [(View((1.0, 0.0), mix_layers="coarse"), b, "mixing and directions"),
                                 (View((0.0, 0.0), blend=0.5), b, "alae-interpolate"),
                                 (View((1.0, 0.0)), None, None)]:
        line, why = reproducing_command(studio.model_path, a if second else b, second, view, studio.directions,
                                        studio.num_layers)
        assert line is None and (reason or "seeds") in why


def test_direction_files_that_do_not_fit_are_skipped_with_a_note(tiny_model, tmp_path):
    folder = tmp_path / "dirs"
    save_direction(Direction(np.eye(32)[0], 1.0, "pca", "wide", "", {}), folder / "wide.npz")
    save_direction(Direction(np.eye(16)[0], 1.0, "pca", "other", "0123456789ab", {}), folder / "other.npz")
    (folder / "junk.npz").write_text("not an archive")
    found, notes = find_directions([str(folder)], str(tiny_model), "fedcba987654", 16)
    assert [d.direction.attribute for d in found] == ["other"]
    assert any("0123456789ab" in n for n in notes)  # made for another model: kept, with a warning
    assert any("32 dimensions" in n for n in notes) and any("junk.npz" in n for n in notes)


def test_uploads_are_checked(tmp_path):
    Image.fromarray(astronaut()[:64, :64]).save(tmp_path / "face.png")
    assert upload_problem(tmp_path / "face.png", 1 << 20) is None
    assert "over the upload limit" in upload_problem(tmp_path / "face.png", 100)
    (tmp_path / "notes.txt").write_text("hello")
    assert "notes.txt is not an image" in upload_problem(tmp_path / "notes.txt", 1 << 20)
    (tmp_path / "face.gif").write_bytes(b"")
    Image.fromarray(astronaut()[:64, :64]).save(tmp_path / "face.gif")
    assert "GIF" in upload_problem(tmp_path / "face.gif", 1 << 20)
    (tmp_path / "face").write_bytes((tmp_path / "face.png").read_bytes())
    assert "rename it" in upload_problem(tmp_path / "face", 1 << 20)
