"""alae-generate: one PNG per seed and a grid, z from the seed as StyleGAN2-ADA draws it,
truncation toward w_avg, noise modes, batch independence, one-line errors."""
import numpy as np
import pytest
import torch
from PIL import Image

from alae.model_files.loading import load_networks
from alae.tools import generate


def run(tiny_model, out, *extra):
    return generate.main([str(tiny_model), "--out", str(out), "--device", "cpu", *extra])


def pixels(path):
    return np.asarray(Image.open(path), dtype=np.int16)


def test_writes_a_png_per_seed_a_grid_and_the_latents(tiny_model, tmp_path):
    assert run(tiny_model, tmp_path, "--seeds", "0-4,9") == 0
    for seed in (0, 1, 2, 3, 4, 9):
        assert pixels(tmp_path / f"seed{seed:04d}.png").shape == (16, 16, 3)
    grid = pixels(tmp_path / "grid.png")
    # 6 images in 2 columns (≈ √6), each shown 4x (16 px < 64 px), 1-pixel gaps
    assert grid.shape == (3 * 65 + 1, 2 * 65 + 1, 3)
    for k, seed in enumerate((0, 1, 2, 3, 4, 9)):
        r, c = divmod(k, 2)
        enlarged = pixels(tmp_path / f"seed{seed:04d}.png").repeat(4, axis=0).repeat(4, axis=1)
        np.testing.assert_array_equal(grid[1 + 65 * r:65 + 65 * r, 1 + 65 * c:65 + 65 * c], enlarged)
    latents = np.load(tmp_path / "latents.npz")
    assert latents["seeds"].tolist() == [0, 1, 2, 3, 4, 9]
    np.testing.assert_array_equal(latents["z"][5], np.random.RandomState(9).randn(16).astype(np.float32))
    _, model = load_networks(tiny_model)
    torch.testing.assert_close(torch.from_numpy(latents["w"]), model.map(torch.from_numpy(latents["z"])))


def test_a_seed_gives_the_same_image_alone_or_in_any_batch(tiny_model, tmp_path):
    assert run(tiny_model, tmp_path / "all", "--seeds", "3-8", "--batch", "4") == 0
    assert run(tiny_model, tmp_path / "one", "--seeds", "6", "--batch", "1") == 0
    difference = np.abs(pixels(tmp_path / "all" / "seed0006.png") - pixels(tmp_path / "one" / "seed0006.png"))
    assert difference.max() <= 1  # float rounding of batched convolutions may move a pixel by one level


def test_psi_zero_on_every_layer_gives_the_average_image_for_every_seed(tiny_model, tmp_path):
    assert run(tiny_model, tmp_path / "avg", "--seeds", "0-3", "--psi", "0", "--cutoff", "6", "--noise", "const") == 0
    images = [pixels(tmp_path / "avg" / f"seed{s:04d}.png") for s in range(4)]
    assert all(np.array_equal(images[0], im) for im in images[1:])
    assert run(tiny_model, tmp_path / "full", "--seeds", "0-3", "--psi", "1", "--noise", "const") == 0
    assert not np.array_equal(pixels(tmp_path / "full" / "seed0000.png"), pixels(tmp_path / "full" / "seed0001.png"))


def test_noise_modes(tiny_model, tmp_path):
    results = {}
    for mode in ("random", "const", "none", "deterministic"):
        assert run(tiny_model, tmp_path / mode, "--seeds", "0-1", "--noise", mode) == 0
        results[mode] = [pixels(tmp_path / mode / f"seed{s:04d}.png") for s in (0, 1)]
    assert run(tiny_model, tmp_path / "again", "--seeds", "0-1", "--noise", "random") == 0
    assert np.array_equal(results["random"][0], pixels(tmp_path / "again" / "seed0000.png"))  # seeded, reproducible
    for a, b in [("random", "const"), ("const", "none"), ("none", "deterministic")]:
        assert not np.array_equal(results[a][0], results[b][0]), (a, b)


@pytest.mark.parametrize("extra, message", [
    (["--seeds", "5-2"], "--seeds: '5-2' is not a list"),
    (["--seeds", "0", "--psi", "-1"], "--psi must be >= 0"),
])
def test_bad_arguments_are_one_line_errors(tiny_model, tmp_path, capsys, extra, message):
    assert run(tiny_model, tmp_path, *extra) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_an_existing_output_is_never_mixed_with_new_results(tiny_model, tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep")
    assert run(tiny_model, tmp_path, "--seeds", "0") == 1
    assert "already holds 1 entries" in capsys.readouterr().err
    assert run(tiny_model, tmp_path, "--seeds", "0", "--overwrite") == 1
    assert "not written by an alae tool" in capsys.readouterr().err and (tmp_path / "mine.txt").exists()
    assert run(tiny_model, tmp_path / "new", "--seeds", "0-2") == 0
    assert run(tiny_model, tmp_path / "new", "--seeds", "7", "--overwrite") == 0
    assert sorted(p.name for p in (tmp_path / "new").glob("seed*.png")) == ["seed0007.png"]


@pytest.mark.cuda
def test_a_seed_gives_the_same_image_on_cpu_and_gpu(tiny_model, tmp_path):
    assert run(tiny_model, tmp_path / "cpu", "--seeds", "0-3") == 0
    assert generate.main([str(tiny_model), "--out", str(tmp_path / "gpu"), "--device", "cuda", "--seeds", "0-3"]) == 0
    for s in range(4):
        difference = np.abs(pixels(tmp_path / "cpu" / f"seed{s:04d}.png") - pixels(tmp_path / "gpu" / f"seed{s:04d}.png"))
        assert difference.max() <= 1
