"""The scripts' API (alae.load_model, Model): the networks called directly, alae-generate's
images, closed-form truncation, batch independence, clear errors."""
import numpy as np
import pytest
import torch
from PIL import Image

import alae
from alae.datasets import to_uint8
from alae.model_files.checkpoint import CheckpointError
from alae.tools import generate


@pytest.fixture(scope="module")
def model(tiny_model):
    return alae.load_model(tiny_model, device="cpu")


def images(count, resolution=16, seed=0):
    return torch.rand(count, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_load_model_gives_the_ema_networks_and_their_sizes(model):
    assert isinstance(model, alae.Model) and model.resolution == 16 and model.latent_dim == 16
    assert model.num_style_layers == 6 and not model.networks.training
    assert not any(p.requires_grad for p in model.networks.parameters())


def test_encode_map_and_decode_are_the_networks_at_full_resolution(model):
    x, z = images(3), torch.randn(3, 16)
    net = model.networks
    torch.testing.assert_close(model.encode(x), net.E(x, 2, 1.0), rtol=0, atol=0)
    torch.testing.assert_close(model.map(z), net.F(z), rtol=0, atol=0)
    w = model.encode(x)
    const = [m.expand(3, -1, -1, -1) for m in model._noise(1, "const")]
    expected = net.G(w[:, None].expand(-1, 6, -1), 2, 1.0, noise=const)
    torch.testing.assert_close(model.decode(w), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.decode(w[:, None].expand(-1, 6, -1)), model.decode(w), rtol=0, atol=0)
    torch.testing.assert_close(model.reconstruct(x), model.decode(w), rtol=0, atol=0)


def test_const_noise_makes_an_image_independent_of_its_batch(model):
    w = model.encode(images(4, seed=1))
    torch.testing.assert_close(model.decode(w)[2:3], model.decode(w[2:3]), rtol=0, atol=1e-5)
    assert not torch.equal(model.decode(w, noise="none"), model.decode(w))


def test_psi_zero_on_every_layer_gives_the_image_of_w_avg_for_every_z(model):
    out = model.generate(torch.randn(3, 16), psi=0.0, cutoff=6)
    torch.testing.assert_close(out, model.decode(model.networks.w_avg[None].expand(3, -1)), rtol=0, atol=1e-5)


def test_sample_draws_the_images_alae_generate_writes(model, tiny_model, tmp_path):
    assert generate.main([str(tiny_model), "--seeds", "2,5", "--psi", "0.7", "--cutoff", "4", "--noise", "const",
                          "--out", str(tmp_path), "--device", "cpu"]) == 0
    ours = to_uint8(model.sample([2, 5], psi=0.7, cutoff=4)).permute(0, 2, 3, 1).numpy().astype(np.int16)
    for k, seed in enumerate((2, 5)):
        theirs = np.asarray(Image.open(tmp_path / f"seed{seed:04d}.png"), dtype=np.int16)
        assert np.abs(ours[k] - theirs).max() <= 1  # batched float rounding may move a level


def test_bad_input_is_a_clear_error(model, tmp_path):
    with pytest.raises(CheckpointError, match="model not found"):
        alae.load_model(tmp_path / "missing.pt", device="cpu")
    with pytest.raises(ValueError, match=r"images must be \[N, C, 16, 16\]"):
        model.encode(images(2, resolution=8))
    with pytest.raises(AttributeError, match="no attribute 'lod_model'"):
        alae.lod_model
