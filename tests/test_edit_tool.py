"""alae-edit: strength 0 is the unedited reconstruction, only the chosen layers move, strengths are
in units of the direction's scale; direction/model mismatches are reported."""
import json

import numpy as np
import pytest
from PIL import Image
from skimage.data import astronaut

from alae.editing.directions import Direction, save_direction
from alae.tools import edit, reconstruct


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    image = astronaut()
    for k, (y, x) in enumerate([(0, 100), (120, 200)]):
        Image.fromarray(np.ascontiguousarray(image[y:y + 256, x:x + 256])).save(folder / f"p{k}.png")
    return folder


@pytest.fixture(scope="module")
def direction(tmp_path_factory, tiny_model):
    from alae.model_files.loading import load_networks, model_fingerprint

    _, model = load_networks(tiny_model)
    vector = np.random.RandomState(1).randn(16)
    path = tmp_path_factory.mktemp("direction") / "d.npz"
    return save_direction(Direction(vector / np.linalg.norm(vector), 0.8, "fit", "test", model_fingerprint(model),
                                    {}), path)


def pixels(path):
    return np.asarray(Image.open(path), dtype=np.int16)


def cpu(tool, *argv):
    return tool.main([*map(str, argv), "--device", "cpu"])


@pytest.mark.parametrize("refine", [[], ["--refine", "5"]])
def test_strength_zero_is_the_unedited_reconstruction(tiny_model, photos, direction, tmp_path, refine):
    assert cpu(reconstruct, tiny_model, photos, "--out", tmp_path / "r", *refine) == 0
    assert cpu(edit, tiny_model, photos, "--direction", direction, "--strengths", "-1,0,2", "--out", tmp_path / "e",
               *refine) == 0
    folder = "refined" if refine else "reconstructions"
    for name in ("p0", "p1"):
        np.testing.assert_array_equal(pixels(tmp_path / "e" / "edits" / name / "01_+0.00.png"),
                                      pixels(tmp_path / "r" / folder / f"{name}.png"))


def test_only_the_chosen_layers_move_by_strength_times_scale(tiny_model, photos, direction, tmp_path):
    assert cpu(edit, tiny_model, photos, "--direction", direction, "--strengths", "-3:3:4", "--layers", "1-2",
               "--gif", "--out", tmp_path / "e") == 0
    latents = np.load(tmp_path / "e" / "latents.npz")
    source, moved = latents["source_wplus"], latents["wplus"]
    assert moved.shape == (2, 4, 6, 16) and latents["strengths"].tolist() == [-3.0, -1.0, 1.0, 3.0]
    np.testing.assert_array_equal(moved[:, :, [0, 3, 4, 5]], np.broadcast_to(source[:, None, [0, 3, 4, 5]],
                                                                              (2, 4, 4, 16)))
    vector = np.load(direction)["vector"]
    expected = source[:, None, [1, 2]] + 0.8 * np.array([-3, -1, 1, 3])[None, :, None, None] * vector
    np.testing.assert_allclose(moved[:, :, [1, 2]], expected, rtol=1e-5, atol=1e-5)
    assert pixels(tmp_path / "e" / "grid.png").shape == (2 * 65 + 1, 5 * 65 + 1, 3)  # input + 4 strengths per row, 4x
    with Image.open(tmp_path / "e" / "gifs" / "p0.gif") as gif:
        assert gif.n_frames == 6  # there and back
    assert json.loads((tmp_path / "e" / "summary.json").read_text())["layers"] == [1, 2]


def test_a_direction_of_another_model_warns_and_another_latent_size_fails(tiny_model, photos, tmp_path, capsys):
    other = save_direction(Direction(np.eye(16)[0], 1.0, "pca", "pc0", "0123456789ab", {}), tmp_path / "other.npz")
    assert cpu(edit, tiny_model, photos / "p0.png", "--direction", other, "--out", tmp_path / "e") == 0
    err = capsys.readouterr().err
    assert "0123456789ab" in err and "warning" in err
    wide = save_direction(Direction(np.eye(32)[0], 1.0, "pca", "pc0", "", {}), tmp_path / "wide.npz")
    assert cpu(edit, tiny_model, photos / "p0.png", "--direction", wide, "--out", tmp_path / "f") == 1
    err = capsys.readouterr().err
    assert "32" in err and "16" in err and err.count("\n") == 1


@pytest.mark.parametrize("extra, message", [
    (["--layers", "5-6"], "layer 6 is outside this model's style layers 0-5"),
    (["--strengths", "a:b"], "--strengths 'a:b'"),
])
def test_bad_arguments(tiny_model, photos, direction, tmp_path, capsys, extra, message):
    assert cpu(edit, tiny_model, photos, "--direction", direction, "--out", tmp_path / "e", *extra) == 1
    assert message in capsys.readouterr().err


def test_weighted_directions_add_up_to_one_offset(tiny_model, photos, direction, tmp_path):
    other = save_direction(Direction(np.eye(16)[3], 0.5, "pca", "pc3", "", {}), tmp_path / "pc3.npz")
    assert cpu(edit, tiny_model, photos / "p0.png", "--direction", f"{direction}=1.5", "--direction", f"{other}=-2",
               "--strengths=1", "--layers", "0-1", "--out", tmp_path / "e") == 0
    latents = np.load(tmp_path / "e" / "latents.npz")
    source, moved = latents["source_wplus"][0].astype(np.float64), latents["wplus"][0, 0].astype(np.float64)
    offset = 1.5 * 0.8 * np.load(direction)["vector"] + -2 * 0.5 * np.eye(16)[3]  # weight × scale × unit vector
    np.testing.assert_allclose(moved[:2], source[:2] + offset, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(moved[2:], source[2:])
    files = json.loads((tmp_path / "e" / "summary.json").read_text())["directions"]
    assert [(f["attribute"], f["weight"]) for f in files] == [("test", 1.5), ("pc3", -2.0)]
    # one direction at weight w and strength 1 is that direction at strength w, pixel for pixel
    assert cpu(edit, tiny_model, photos / "p0.png", "--direction", f"{direction}=2", "--strengths=1",
               "--out", tmp_path / "w") == 0
    assert cpu(edit, tiny_model, photos / "p0.png", "--direction", direction, "--strengths=2", "--out", tmp_path / "s") == 0
    np.testing.assert_array_equal(pixels(tmp_path / "w" / "edits" / "p0" / "00_+1.00.png"),
                                  pixels(tmp_path / "s" / "edits" / "p0" / "00_+2.00.png"))


def test_a_direction_weight_that_is_not_a_number(tiny_model, photos, direction, tmp_path, capsys):
    assert cpu(edit, tiny_model, photos, "--direction", f"{direction}=lots", "--out", tmp_path / "e") == 1
    assert "FILE=WEIGHT" in capsys.readouterr().err
