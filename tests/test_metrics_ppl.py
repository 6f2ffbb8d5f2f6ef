"""PPL: the face crop, the ≤256 px box downscale, the 1st–99th percentile mean, the distances of
the definition recomputed pair by pair, no 8-bit rounding of the ε step, and the 32 px minimum."""
import copy

import inception_stand_in as stand_in
import numpy as np
import pytest
import torch
from skimage.measure import block_reduce

from alae import randomness
from alae.config import Config, ModelConfig
from alae.metrics import compute_metrics
from alae.metrics.evaluation import Evaluation
from alae.metrics.lpips import load_lpips
from alae.metrics.lpips_inputs import downscale_for_vgg
from alae.metrics.ppl import face_crop, filtered_mean, pair_distances, ppl
from alae.metrics.sharding import single_process
from alae.model import LatentAutoencoder
from alae.model_files.loading import load_networks

metrics_cache, stand_ins, lfw16 = stand_in.metrics_cache, stand_in.stand_ins, stand_in.lfw16  # pytest fixtures
SEED = 2


@pytest.fixture(scope="module")
def model32():
    """A random 32 px ALAE (PPL's face crop of 16 px is the smallest LPIPS takes)."""
    torch.manual_seed(0)
    model = LatentAutoencoder(Config(model=ModelConfig(resolution=32, channels=[32, 32, 16, 16], latent_dim=16,
                                                       mapping_layers=2)))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and not name.startswith("F."):
                p.copy_(torch.randn_like(p) * 0.3)  # noise weights too, so the noise matters
    return model.eval().requires_grad_(False)


def evaluation(model, lpips_path):
    return Evaluation(model, None, model.num_lods - 1, 1.0, single_process("cpu"), seed=SEED, batch=8,
                      lpips_path=lpips_path, show_progress=False)


def test_the_face_crop_is_rows_3c_to_7c_and_columns_2c_to_6c():
    image = torch.arange(64 * 64, dtype=torch.float32).reshape(1, 1, 64, 64)
    crop = face_crop(image)
    assert crop.shape == (1, 1, 32, 32)
    assert crop[0, 0, 0, 0] == 24 * 64 + 16 and crop[0, 0, -1, -1] == 55 * 64 + 47  # c = 8


@pytest.mark.parametrize("side, out", [(256, 256), (512, 256), (768, 256), (600, 300), (128, 128)])
def test_images_larger_than_256_are_box_downscaled_by_side_over_256(side, out):
    images = torch.rand(2, 3, side, side, dtype=torch.float64)
    small = downscale_for_vgg(images)
    assert small.shape == (2, 3, out, out)
    f = side // out
    np.testing.assert_allclose(small.numpy(), block_reduce(images.numpy(), (1, 1, f, f), np.mean), rtol=1e-12)


def test_the_filtered_mean_drops_values_outside_the_1st_and_99th_percentiles():
    values = np.random.default_rng(0).lognormal(size=1000)
    ordered = np.sort(values)
    lo, hi = ordered[int(np.floor(0.01 * 999))], ordered[int(np.ceil(0.99 * 999))]  # numpy 'lower' / 'higher'
    assert filtered_mean(values) == pytest.approx(ordered[(ordered >= lo) & (ordered <= hi)].mean(), rel=1e-12)
    assert filtered_mean(values) < values.mean()  # the long tail is cut


def z_of(i, purpose):
    g = torch.Generator().manual_seed(randomness.derive_seed(SEED, purpose, i))
    return torch.randn(16, generator=g)


@pytest.mark.parametrize("sampling", ["end", "full"])
def test_distances_follow_the_definition_pair_by_pair(model32, stand_ins, sampling):
    """In float64: in float32 an ε step keeps only about two digits (as in StyleGAN2-ADA's PPL)."""
    count, lpips, model32 = 12, load_lpips(stand_ins[1], "cpu"), copy.deepcopy(model32).double()
    ours = pair_distances(evaluation(model32, stand_ins[1]), range(count), count, sampling, lpips)
    g = randomness.generator(SEED, "ppl-t")
    t = torch.rand(count, generator=g) if sampling == "full" else torch.randint(0, 2, (count,), generator=g).float()
    if sampling == "end":
        assert set(t.tolist()) == {0.0, 1.0}
    t = t.double()
    for i in range(count):
        w0, w1 = (model32.F(z_of(i, purpose)[None].double()) for purpose in ("ppl-z0", "ppl-z1"))
        noise = [n.double() for n in randomness.per_sample_noise(model32.G.noise_shapes(3), [i], torch.device("cpu"),
                                                                  SEED, "ppl-noise")]
        a, b = (model32.G(w[:, None].expand(-1, 8, -1), 3, 1.0, noise)
                for w in (w0 + t[i] * (w1 - w0), w0 + (t[i] + 1e-4) * (w1 - w0)))
        crop = slice(12, 28), slice(8, 24)  # c = 4
        expected = lpips(a[:, :, crop[0], crop[1]], b[:, :, crop[0], crop[1]]) / 1e-8
        assert ours[i].item() == pytest.approx(expected.item(), rel=1e-6)


def test_an_epsilon_step_is_below_one_8_bit_level_and_still_measured(model32, stand_ins):
    """Rounded to 8 bits, most of an ε step would vanish; the distances above equal the unrounded definition."""
    ev, lpips = evaluation(model32, stand_ins[1]), load_lpips(stand_ins[1], "cpu")
    distances = pair_distances(ev, range(16), 16, "full", lpips)
    w = model32.F(torch.stack([z_of(i, "ppl-z0") for i in range(2)]))
    step = model32.G(model32.broadcast(w + 1e-4 * w.flip(0)), 3, 1.0, "none") - model32.G(model32.broadcast(w), 3, 1.0,
                                                                                          "none")
    assert step.abs().max() < 1 / 127.5
    assert (distances > 0).all()


def test_ppl_records_its_pairs_epsilon_and_crop(model32, stand_ins):
    figures = ppl(evaluation(model32, stand_ins[1]), "ppl_wend", 20, "end")
    assert figures.images == {"pairs": 20} and figures.details == {"epsilon": 1e-4, "crop": "face"}
    assert figures.value > 0


def test_below_32_px_ppl_is_skipped_with_the_reason(tiny_model, lfw16, stand_ins):
    _, model = load_networks(tiny_model, verbose=False)
    (result,) = compute_metrics("ppl_wfull", model, lfw16, lpips=stand_ins[1], progress=False)
    assert result.value is None and result.skipped == "needs images of at least 32 px; the networks run at 16 px (lod 2)"
