"""parzen_ll: the Parzen-window log density against a direct float64 log-sum-exp and, for one
sample, a Gaussian's closed-form log density; σ selection; the metric on a tiny model."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from alae.datasets import LMDBDataset
from alae.metrics import compute_metrics
from alae.metrics.generation import generated_images
from alae.metrics.parzen import SIGMA_GRID, VALIDATION_IMAGES, parzen_log_likelihoods, select_sigma
from digit_database import networks, write_digit_database, write_family_model


def direct(x, samples, sigma):
    """log (1/m) Σ_j N(x; μ_j, σ²I) with the differences themselves, float64 (numpy/scipy)."""
    d = x.shape[1]
    exponents = np.concatenate([-((block[:, None, :] - samples[None, :, :]) ** 2).sum(axis=2) / (2 * sigma**2)
                                for block in np.array_split(x, max(1, len(x) // 8))])
    return logsumexp(exponents, axis=1) - math.log(len(samples)) - d / 2 * math.log(2 * math.pi * sigma**2)


def test_parzen_log_likelihoods_are_the_direct_log_sum_exp_in_several_blocks():
    rng = np.random.default_rng(0)
    x, samples = rng.uniform(size=(150, 12)), rng.uniform(size=(40, 12))  # 150 rows: three blocks
    for sigma in (0.05, 0.3, 1.0):  # 0.05: far from every sample, exponents of −100s
        got = parzen_log_likelihoods(torch.from_numpy(x).float(), torch.from_numpy(samples).float(), sigma)
        expected = direct(x.astype(np.float32).astype(np.float64), samples.astype(np.float32).astype(np.float64),
                          sigma)
        assert got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-9)


def test_one_sample_is_a_gaussians_log_density():
    rng = np.random.default_rng(1)
    x, mu = rng.uniform(size=(5, 7)), rng.uniform(size=(1, 7))
    expected = multivariate_normal(mu[0], 0.2**2 * np.eye(7)).logpdf(x)
    got = parzen_log_likelihoods(torch.from_numpy(x), torch.from_numpy(mu), 0.2).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_sigma_is_the_grid_value_of_the_highest_validation_likelihood():
    rng = np.random.default_rng(2)
    samples = torch.from_numpy(rng.uniform(size=(30, 10)))
    validation = samples[:10] + torch.from_numpy(rng.normal(scale=0.25, size=(10, 10)))
    sigma, means = select_sigma(validation, samples)
    losses = [-direct(validation.numpy(), samples.numpy(), s).mean() for s in SIGMA_GRID]
    assert sigma == SIGMA_GRID[int(np.argmin(losses))]
    assert 0.1 < sigma < 1.0  # an inner point of the grid: the search is not at its edge
    np.testing.assert_allclose(means, [-loss for loss in losses], rtol=1e-12)
    np.testing.assert_allclose(SIGMA_GRID, np.logspace(-1, 0, 10))


def test_parzen_ll_of_a_model_is_the_held_out_mean_under_its_samples(tmp_path):
    db = write_digit_database(tmp_path, train_per_class=12, test_per_class=3)
    model = networks(write_family_model(tmp_path / "wae.pt", "wae"))
    (result,) = compute_metrics(["parzen_ll1k"], model, db, holdout=30, seed=5, batch=64, progress=False)
    images = LMDBDataset(db, 28)
    pixels = torch.stack([images[i] for i in range(len(images))]).flatten(1).double().numpy() / 255
    ev = SimpleNamespace(model=model, seed=5, lod=0, alpha=1.0, device=torch.device("cpu"), mixing=False)
    samples = generated_images(ev, range(1000), 1000).flatten(1).double().numpy() / 255
    validation, test = pixels[120 - min(VALIDATION_IMAGES, 120):120], pixels[120:]
    losses = [-direct(validation, samples, s).mean() for s in SIGMA_GRID]
    sigma = SIGMA_GRID[int(np.argmin(losses))]
    ll = direct(test, samples, sigma)
    assert result.info["sigma"] == sigma
    assert result.value == pytest.approx(ll.mean(), rel=1e-10)
    assert result.info["standard_error"] == pytest.approx(ll.std() / math.sqrt(30), rel=1e-8)
    assert result.images == {"generated": 1000, "validation": 120, "held_out": 30}
