"""The image tools on models of the family (MLP VAE, WAE, AAE): alae-generate draws z from the
model's prior and writes no w, alae-reconstruct stores each model's code under its own name,
alae-interpolate's endpoints are exact, alae-metrics' mse_rec is the held-out MSE of G(E(x)),
and alae-mix / alae-edit say when a one-layer model has no style layers to pick.

The expected values are computed here from the networks themselves (E, G, the sigmoid of a
Bernoulli VAE's logits), not through the model's generate/encode helpers the tools use."""
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from alae.config import load_config, to_dict
from alae.datasets import LMDBDataset, ensure_mnist_database, to_model_range
from alae.editing.directions import Direction, save_direction
from alae.model import LatentAutoencoder
from alae.model_files.checkpoint import save_networks_checkpoint
from alae.model_files.loading import load_networks, model_fingerprint
from alae.tools import edit, generate, interpolate, metrics, mix, reconstruct

LATENT = 4
MODELS = {  # name: (config, overrides); the AAE's prior is the 10-Gaussian mixture, not N(0, I)
    "vae": ("mnist-vae", ["train.objective=vae"]),
    "wae": ("mnist-wae-mmd", ["train.objective=wae_mmd"]),
    "aae": ("mnist-aae", ["train.objective=aae", "aae.prior=mixture", "model.discriminator_width=16"]),
}
CODE_NAMES = {"vae": "mu", "wae": "z", "aae": "z"}


def write_family_model(path, name: str, seed: int = 0):
    """A tiny MLP model of the family with random weights and biases (so every input matters),
    saved as a networks-only alae checkpoint, as conftest.write_tiny_model does for the ALAE."""
    config, overrides = MODELS[name]
    cfg = load_config(config, [*overrides, "model.mlp_width=32", f"model.latent_dim={LATENT}"])
    torch.manual_seed(seed)
    model = LatentAutoencoder(cfg)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:
                p.copy_(torch.randn_like(p) * 0.3)
    return save_networks_checkpoint(path, to_dict(cfg), None, model.state_dict(), {"format": "test"})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("family_models")
    return {name: write_family_model(folder / f"{name}.pt", name, seed) for seed, name in enumerate(MODELS)}


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return ensure_mnist_database(tmp_path_factory.getbasetemp() / "alae-family-cache")


def last_digits(mnist, count):
    """uint8 [count, 1, 28, 28]: the database's last digits, the central 28 px of its 32 px level."""
    images = LMDBDataset(mnist, 32)
    return torch.stack([images[i][:, 2:30, 2:30] for i in range(len(images) - count, len(images))])


@pytest.fixture(scope="module")
def digit_pngs(tmp_path_factory, mnist):
    folder = tmp_path_factory.mktemp("digits")
    for k, digit in enumerate(last_digits(mnist, 3)):
        Image.fromarray(digit[0].numpy(), mode="L").save(folder / f"d{k}.png")
    return folder


def cpu(tool, model, *argv):
    return tool.main([str(model), *map(str, argv), "--device", "cpu"])


def pixels(path):
    return np.asarray(Image.open(path), dtype=np.int16)


def networks(path):
    return load_networks(path, verbose=False)[1]


UNIT_PIXELS = {"vae": True, "wae": True, "aae": False}  # the configs' model.pixel_range: [0, 1] or [-1, 1]


def code_of(model, name, x):
    """The code of images x [N, 1, 28, 28] in [−1, 1] from E's raw output on the config's pixels
    ((x + 1)/2 for [0, 1]): its first half (the posterior mean) for the VAE, all of it for the
    deterministic encoders."""
    out = model.E((x + 1) / 2 if UNIT_PIXELS[name] else x)
    return out[:, :LATENT] if name == "vae" else out


def decoded(model, name, z):
    """Images in [−1, 1] of codes z [N, latent]: the VAE's G emits Bernoulli logits of [0, 1]
    pixels and the WAE's a sigmoid's input (both 2·sigmoid − 1), the AAE's a tanh's input."""
    raw = model.G(z[:, None, :])
    return 2 * torch.sigmoid(raw) - 1 if UNIT_PIXELS[name] else torch.tanh(raw)


def as_uint8(images):
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def one_line(capsys, prog):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{prog}: error: ") and "Traceback" not in err, err
    return err


def assert_from_the_mixture_prior(z):
    """Rows drawn from the 10-component mixture (radius 1.4, radial std 0.5, tangential std 0.05):
    the coordinates off the plane are N(0, 0.05²), and in the plane each point lies on a line
    through the origin at some angle 2πk/10, at most a few tangential stds away."""
    assert np.abs(z[:, 2:]).max() < 6 * 0.05
    angles = 2 * np.pi * np.arange(10) / 10
    off_line = np.abs(-np.sin(angles)[None] * z[:, :1] + np.cos(angles)[None] * z[:, 1:2])  # [N, K]
    assert (off_line.min(axis=1) < 6 * 0.05).all()


@pytest.mark.parametrize("name", list(MODELS))
def test_generate_draws_z_from_the_prior_and_decodes_it(name, models, tmp_path):
    assert cpu(generate, models[name], "--seeds", "0-3", "--psi", "1", "--out", tmp_path / "g") == 0
    latents = np.load(tmp_path / "g" / "latents.npz")
    assert set(latents.files) == {"seeds", "z"}  # no mapping F: no w
    z = latents["z"]
    assert z.shape == (4, LATENT)
    if name == "aae":
        assert_from_the_mixture_prior(z)
    else:  # N(0, I): StyleGAN2-ADA's RandomState(seed).randn
        np.testing.assert_array_equal(z, np.stack([np.random.RandomState(s).randn(LATENT) for s in range(4)])
                                      .astype(np.float32))
    model = networks(models[name])
    with torch.no_grad():
        expected = as_uint8(decoded(model, name, torch.from_numpy(z)))
    for s in range(4):
        image = pixels(tmp_path / "g" / f"seed{s:04d}.png")
        assert image.shape == (28, 28)
        assert np.abs(image - expected[s, 0]).max() <= 1  # float rounding in another batch shape
    assert pixels(tmp_path / "g" / "grid.png").shape[:2] == (2 * 85 + 1, 2 * 85 + 1)  # 2 x 2, 28 px shown 3x


def test_generate_truncates_toward_the_prior_mean(models, tmp_path):
    assert cpu(generate, models["wae"], "--seeds", "5", "--psi", "0.5", "--out", tmp_path / "g") == 0
    z = np.random.RandomState(5).randn(LATENT).astype(np.float32)
    with torch.no_grad():
        expected = as_uint8(decoded(networks(models["wae"]), "wae", 0.5 * torch.from_numpy(z)[None]))  # mean 0
    assert np.abs(pixels(tmp_path / "g" / "seed0005.png") - expected[0, 0]).max() <= 1


def test_generate_keeps_w_for_an_alae_model(tiny_model, tmp_path):
    assert cpu(generate, tiny_model, "--seeds", "0", "--out", tmp_path / "g") == 0
    assert set(np.load(tmp_path / "g" / "latents.npz").files) == {"seeds", "z", "w"}


@pytest.mark.parametrize("name", list(MODELS))
def test_reconstruct_stores_each_model_code_under_its_name(name, models, digit_pngs, tmp_path):
    assert cpu(reconstruct, models[name], digit_pngs, "--out", tmp_path / "r") == 0
    latents = np.load(tmp_path / "r" / "latents.npz")
    assert set(latents.files) == {"names", CODE_NAMES[name]}
    assert latents["names"].tolist() == ["d0.png", "d1.png", "d2.png"]
    u8 = np.stack([np.asarray(Image.open(digit_pngs / f"d{k}.png")) for k in range(3)])[:, None]
    x = torch.from_numpy(u8).float() / 127.5 - 1
    model = networks(models[name])
    with torch.no_grad():
        codes = code_of(model, name, x)
        expected = as_uint8(decoded(model, name, codes))
    torch.testing.assert_close(torch.from_numpy(latents[CODE_NAMES[name]]), codes, rtol=1e-5, atol=1e-5)
    for k in range(3):
        assert np.abs(pixels(tmp_path / "r" / "reconstructions" / f"d{k}.png") - expected[k, 0]).max() <= 1


def test_reconstruct_reads_the_held_out_digits_of_the_mnist_database(models, mnist, tmp_path):
    assert cpu(reconstruct, models["vae"], mnist, "--holdout", "3", "--out", tmp_path / "r") == 0
    latents = np.load(tmp_path / "r" / "latents.npz")
    x = to_model_range(last_digits(mnist, 3))
    model = networks(models["vae"])
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(latents["mu"]), code_of(model, "vae", x), rtol=1e-5, atol=1e-5)
    assert len(latents["names"]) == 3


@pytest.mark.parametrize("name", ["vae", "aae"])
def test_interpolate_between_two_seeds_has_exact_endpoints(name, models, tmp_path):
    assert cpu(generate, models[name], "--seeds", "3,8", "--psi", "1", "--out", tmp_path / "g") == 0
    assert cpu(interpolate, models[name], "3", "8", "--psi", "1", "--steps", "5", "--out", tmp_path / "i") == 0
    z = np.load(tmp_path / "g" / "latents.npz")["z"]
    latents = np.load(tmp_path / "i" / "latents.npz")
    corners, wplus = latents["corners"], latents["wplus"]
    assert latents["endpoints"].tolist() == ["seed 3", "seed 8"]
    assert corners.shape == (2, 1, LATENT) and wplus.shape == (5, 1, LATENT)  # one code layer
    np.testing.assert_array_equal(corners[:, 0], z)
    np.testing.assert_array_equal(wplus[0], corners[0])
    np.testing.assert_array_equal(wplus[-1], corners[1])
    for k in range(5):
        np.testing.assert_allclose(wplus[k], corners[0] + k / 4 * (corners[1] - corners[0]), rtol=1e-6, atol=1e-6)
    for frame, seed in (("00", 3), ("04", 8)):
        difference = pixels(tmp_path / "i" / "frames" / f"{frame}.png") - pixels(tmp_path / "g" / f"seed{seed:04d}.png")
        assert np.abs(difference).max() <= 1


@pytest.mark.parametrize("name", list(MODELS))
def test_metrics_mse_rec_is_the_held_out_mse_of_g_of_e(name, models, mnist, tmp_path, capsys):
    out = tmp_path / "m"
    assert metrics.main([str(models[name]), "--metrics", "mse_rec", "--data", str(mnist), "--holdout", "10",
                         "--batch", "4", "--workers", "0", "--device", "cpu", "--out", str(out)]) == 0
    (row,) = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert row["metric"] == "mse_rec" and row["images"] == {"reconstructed": 10}
    x = to_model_range(last_digits(mnist, 10)).double()
    model = networks(models[name]).double()
    with torch.no_grad():
        rec = decoded(model, name, code_of(model, name, x))
    expected = (rec - x).square().mean().item()  # over all pixels, in [−1, 1], not clamped
    assert row["value"] == pytest.approx(expected, rel=1e-5)
    assert "mse_rec" in capsys.readouterr().out


def test_mix_on_a_one_layer_model_is_a_one_line_error(models, tmp_path, capsys):
    assert cpu(mix, models["vae"], "--rows", "0", "--cols", "1", "--out", tmp_path / "m") == 1
    err = one_line(capsys, "alae-mix")
    assert "one code layer" in err and "no style layers to mix" in err
    assert not (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def direction(models, tmp_path_factory):
    vector = np.random.RandomState(1).randn(LATENT)
    path = tmp_path_factory.mktemp("direction") / "d.npz"
    return save_direction(Direction(vector / np.linalg.norm(vector), 0.8, "fit", "test",
                                    model_fingerprint(networks(models["wae"])), {}), path)


def test_edit_coarse_layers_of_a_one_layer_model_is_a_one_line_error(models, digit_pngs, direction, tmp_path, capsys):
    assert cpu(edit, models["wae"], digit_pngs, "--direction", direction, "--layers", "coarse",
               "--out", tmp_path / "e") == 1
    err = one_line(capsys, "alae-edit")
    assert "--layers coarse" in err and "one code layer" in err
    assert not (tmp_path / "e").exists()


def test_edit_with_the_default_layers_moves_the_one_code(models, digit_pngs, direction, tmp_path, capsys):
    assert cpu(reconstruct, models["wae"], digit_pngs, "--out", tmp_path / "r") == 0
    assert cpu(edit, models["wae"], digit_pngs, "--direction", direction, "--strengths", "-2,0,1",
               "--out", tmp_path / "e") == 0
    assert "warning" not in capsys.readouterr().err  # the direction is this model's
    latents = np.load(tmp_path / "e" / "latents.npz")
    source, moved = latents["source_wplus"], latents["wplus"]
    assert source.shape == (3, 1, LATENT) and moved.shape == (3, 3, 1, LATENT) and latents["layers"].tolist() == [0]
    np.testing.assert_allclose(source[:, 0], np.load(tmp_path / "r" / "latents.npz")["z"], rtol=1e-6, atol=1e-6)
    vector = np.load(direction)["vector"]
    expected = source[:, None] + 0.8 * np.array([-2.0, 0.0, 1.0])[None, :, None, None] * vector
    np.testing.assert_allclose(moved, expected, rtol=1e-5, atol=1e-5)
    model = networks(models["wae"])
    with torch.no_grad():
        images = as_uint8(decoded(model, "wae", torch.from_numpy(moved.reshape(-1, LATENT))))
    for k in range(3):
        for i, label in enumerate(["-2.00", "+0.00", "+1.00"]):
            frame = pixels(tmp_path / "e" / "edits" / f"d{k}" / f"{i:02d}_{label}.png")
            assert np.abs(frame - images[3 * k + i, 0]).max() <= 1
        np.testing.assert_array_equal(pixels(tmp_path / "e" / "edits" / f"d{k}" / "01_+0.00.png"),
                                      pixels(tmp_path / "r" / "reconstructions" / f"d{k}.png"))
    assert json.loads((tmp_path / "e" / "summary.json").read_text())["layers"] == [0]
    assert not math.isnan(float(moved.sum()))
