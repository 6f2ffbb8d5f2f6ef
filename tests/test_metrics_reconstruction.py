"""Reconstruction metrics against their definitions written out image by image: mse_rec (the
training loop's held-out MSE), lpips_rec, fid_rec (scipy's sqrtm); held-out and first-N images."""
import inception_stand_in as stand_in
import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from alae.datasets import LMDBDataset
from alae.metrics import MetricError, compute_metrics
from alae.metrics.lpips import load_lpips
from alae.model_files.loading import load_networks
from alae.randomness import per_sample_noise

metrics_cache, stand_ins, lfw16 = stand_in.metrics_cache, stand_in.stand_ins, stand_in.lfw16  # pytest fixtures


@pytest.fixture(scope="module")
def model(tiny_model):
    return load_networks(tiny_model, verbose=False)[1]


def reconstruction(model, image_u8, position, lod, alpha, seed):
    """G(E(x)) of one database image at (lod, alpha): 2×2 means down to the lod's side, the
    noise of set position `position` as the training loop draws it."""
    x = image_u8[None].float() / 127.5 - 1
    while x.shape[-1] > 4 * 2**lod:
        x = F.avg_pool2d(x, 2)
    noise = per_sample_noise(model.G.noise_shapes(lod), [position], torch.device("cpu"), seed, "eval")
    return model.reconstruct(x, lod, alpha, noise=noise)


def test_mse_rec_is_the_held_out_mse_of_the_training_loop(model, lfw16):
    (result,) = compute_metrics("mse_rec", model, lfw16, lod=1, alpha=0.4, holdout=8, seed=3, batch=3, progress=False)
    images = LMDBDataset(lfw16, 16)
    squared = 0.0
    for position, index in enumerate(range(92, 100)):  # the last 8: alae.training.data.held_out_images
        rec = reconstruction(model, images[index], position, 1, 0.4, 3)
        upsampled = rec.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest, 8 → 16 px
        squared += (upsampled.double() - (images[index].double() / 127.5 - 1)).square().sum().item()
    assert result.value == pytest.approx(squared / (8 * 3 * 16 * 16), rel=1e-5)
    assert result.images == {"reconstructed": 8} and result.info["holdout"] == 8
    assert (result.info["lod"], result.info["resolution"], result.info["alpha"]) == (1, 8, 0.4)


def test_without_a_holdout_the_first_images_are_used_and_counted(model, lfw16):
    first, everything = compute_metrics("mse_rec1k,mse_rec", model, lfw16, batch=50, progress=False)
    assert first.images == everything.images == {"reconstructed": 100}  # 1k asked, 100 there
    images = LMDBDataset(lfw16, 16)
    squared = sum((reconstruction(model, images[i], i, 2, 1.0, 0).double() - (images[i].double() / 127.5 - 1))
                  .square().sum().item() for i in range(100))
    assert everything.value == pytest.approx(squared / (100 * 3 * 16 * 16), rel=1e-5)


def test_lpips_rec_is_the_mean_lpips_of_8_bit_reconstructions(model, lfw16, stand_ins):
    (result,) = compute_metrics("lpips_rec1k", model, lfw16, holdout=10, seed=1, batch=4, lpips=stand_ins[1],
                                progress=False)
    lpips = load_lpips(stand_ins[1], "cpu")
    images = LMDBDataset(lfw16, 16)
    distances = []
    for position, index in enumerate(range(90, 100)):
        rec = reconstruction(model, images[index], position, 2, 1.0, 1)
        rec_8bit = ((rec + 1) * 127.5).round().clamp(0, 255) / 127.5 - 1
        distances.append(lpips(rec_8bit, images[index][None].float() / 127.5 - 1).item())
    assert result.value == pytest.approx(np.mean(distances), rel=1e-5)
    assert result.images == {"reconstructed": 10} and result.info["lpips"] == str(stand_ins[1])


def test_fid_rec_compares_the_reconstructions_with_the_same_images(model, lfw16, stand_ins):
    (result,) = compute_metrics("fid_rec1k", model, lfw16, holdout=40, inception=stand_ins[0],
                                mode="legacy_tensorflow", progress=False)
    network = torch.jit.load(str(stand_ins[0]))
    images = LMDBDataset(lfw16, 16)
    originals = torch.stack([images[i] for i in range(60, 100)])
    recs = torch.cat([reconstruction(model, images[60 + j], j, 2, 1.0, 0) for j in range(40)])
    recs_8bit = ((recs + 1) * 127.5).round().clamp(0, 255)
    a = network(recs_8bit, return_features=True).double().numpy()
    b = network(originals.float(), return_features=True).double().numpy()
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root, _ = scipy.linalg.sqrtm(sa @ sb, disp=False)
    expected = np.square(a.mean(0) - b.mean(0)).sum() + np.trace(sa + sb - 2 * np.real(root))
    assert result.value == pytest.approx(expected, rel=1e-4)
    assert result.images == {"real": 40, "reconstructed": 40} and result.info["mode"] == "legacy_tensorflow"


def test_a_holdout_larger_than_the_database_is_a_one_line_error(model, lfw16):
    with pytest.raises(MetricError, match=f"holdout 101 is not between 1 and the 100 images of {lfw16}"):
        compute_metrics("mse_rec", model, lfw16, holdout=101, progress=False)
