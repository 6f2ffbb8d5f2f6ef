"""alae-mix and alae-interpolate: only the chosen layers change, endpoints are exact, and images
and seeds give the same latents as alae-reconstruct and alae-generate."""
import numpy as np
import pytest
from PIL import Image
from skimage.data import astronaut

from alae.tools import generate, interpolate, mix, reconstruct


def enlarged(image):
    """A 16 px image as the grids show it: 4x, nearest (alae.grids)."""
    return image.repeat(4, axis=0).repeat(4, axis=1)


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    path = tmp_path_factory.mktemp("face") / "astronaut.png"
    Image.fromarray(astronaut()[:256, 100:356]).save(path)
    return path


def pixels(path):
    return np.asarray(Image.open(path), dtype=np.int16)


def cpu(tool, model, *argv):
    return tool.main([str(model), *map(str, argv), "--device", "cpu"])


def test_mixing_changes_only_the_chosen_layers(tiny_model, face, tmp_path):
    assert cpu(mix, tiny_model, "--rows", face, "4", "--cols", "1-3", "--layers", "2-3", "--out", tmp_path / "m") == 0
    latents = np.load(tmp_path / "m" / "latents.npz")
    assert latents["rows"].tolist() == ["astronaut.png", "seed 4"] and latents["cols"].tolist() == [
        "seed 1", "seed 2", "seed 3"]
    wplus, rows, cols = latents["wplus"], latents["row_wplus"], latents["col_wplus"]
    assert wplus.shape == (2, 3, 6, 16) and latents["layers"].tolist() == [2, 3]
    for r in range(2):
        for c in range(3):
            np.testing.assert_array_equal(wplus[r, c, [0, 1, 4, 5]], rows[r, [0, 1, 4, 5]])
            np.testing.assert_array_equal(wplus[r, c, [2, 3]], cols[c, [2, 3]])
    grid = pixels(tmp_path / "m" / "grid.png")
    assert grid.shape == (3 * 65 + 1, 4 * 65 + 1, 3)  # a header row and column around the 2 x 3 mixes, 4x enlarged
    np.testing.assert_array_equal(grid[66:130, 131:195], enlarged(pixels(tmp_path / "m" / "cells" / "row00_col01.png")))


def test_mixing_every_layer_gives_the_column_image(tiny_model, tmp_path):
    assert cpu(mix, tiny_model, "--rows", "0", "--cols", "5", "--layers", "all", "--out", tmp_path / "m") == 0
    grid = pixels(tmp_path / "m" / "grid.png")
    np.testing.assert_array_equal(enlarged(pixels(tmp_path / "m" / "cells" / "row00_col00.png")), grid[1:65, 66:130])


def test_endpoints_match_alae_reconstruct_and_alae_generate(tiny_model, face, tmp_path):
    assert cpu(reconstruct, tiny_model, face, "--out", tmp_path / "r") == 0
    assert cpu(generate, tiny_model, "--seeds", "7", "--psi", "1", "--noise", "const", "--out", tmp_path / "g") == 0
    assert cpu(interpolate, tiny_model, face, "7", "--psi", "1", "--steps", "4", "--out", tmp_path / "i") == 0
    latents = np.load(tmp_path / "i" / "latents.npz")
    corners = latents["corners"]
    np.testing.assert_array_equal(corners[0], np.broadcast_to(np.load(tmp_path / "r" / "latents.npz")["w"][0], (6, 16)))
    np.testing.assert_array_equal(corners[1], np.broadcast_to(np.load(tmp_path / "g" / "latents.npz")["w"][0], (6, 16)))
    np.testing.assert_array_equal(latents["wplus"][0], corners[0])
    np.testing.assert_array_equal(latents["wplus"][-1], corners[1])
    # same latents, same (const) noise: the end frames are those tools' images, bit for bit
    np.testing.assert_array_equal(pixels(tmp_path / "i" / "frames" / "00.png"),
                                  pixels(tmp_path / "r" / "reconstructions" / "astronaut.png"))
    np.testing.assert_array_equal(pixels(tmp_path / "i" / "frames" / "03.png"), pixels(tmp_path / "g" / "seed0007.png"))


def test_four_corners_give_a_bilinear_grid_and_a_gif(tiny_model, tmp_path):
    assert cpu(interpolate, tiny_model, "0-3", "--steps", "3", "--gif", "--out", tmp_path / "i") == 0
    latents = np.load(tmp_path / "i" / "latents.npz")
    wplus, corners = latents["wplus"], latents["corners"]
    assert wplus.shape == (9, 6, 16)
    for frame, corner in ((0, 0), (2, 1), (6, 2), (8, 3)):
        np.testing.assert_array_equal(wplus[frame], corners[corner])
    np.testing.assert_allclose(wplus[4], corners.mean(0), rtol=1e-6, atol=1e-6)
    assert pixels(tmp_path / "i" / "grid.png").shape == (3 * 65 + 1,) * 2 + (3,)
    with Image.open(tmp_path / "i" / "interpolation.gif") as gif:
        assert gif.n_frames == 9


@pytest.mark.parametrize("tool, argv, message", [
    (interpolate, ["0-2"], "interpolation needs 2 or 4 endpoints; 0-2 gave 3 (seed 0, seed 1, seed 2)"),
    (mix, ["--rows", "0", "--cols", "1", "--layers", "3-6"], "layer 6 is outside this model's style layers 0-5"),
    (mix, ["--rows", "/nonexistent.png", "--cols", "1"], "input not found: /nonexistent.png"),
])
def test_bad_input_is_one_line(tiny_model, tmp_path, capsys, tool, argv, message):
    assert cpu(tool, tiny_model, *argv, "--out", tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
