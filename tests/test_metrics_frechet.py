"""FID and KID arithmetic against independent float64 references: scipy's sqrtm and the KID sum written out."""
import numpy as np
import pytest
import scipy.linalg

from alae.metrics.frechet import (
    KID_MAX_SUBSET_SIZE,
    KID_NUM_SUBSETS,
    feature_moments,
    frechet_distance,
    kernel_inception_distance,
)


def scipy_fid(mu1, sigma1, mu2, sigma2):
    """The formula as StyleGAN2-ADA writes it: ‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2·sqrtm(Σ1Σ2)), real part."""
    root, _ = scipy.linalg.sqrtm(sigma1 @ sigma2, disp=False)
    return float(np.real(np.square(mu1 - mu2).sum() + np.trace(sigma1 + sigma2 - 2 * root)))


def features(n, d, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mix + shift


@pytest.mark.parametrize("n, d", [(400, 16), (60, 32)])  # full-rank and singular (n < d) covariances
def test_frechet_distance_equals_scipy_sqrtm_in_float64(n, d):
    a, b = features(n, d, 0), features(n, d, 1, shift=0.3)
    ours = frechet_distance(*feature_moments(a), *feature_moments(b))
    reference = scipy_fid(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert ours == pytest.approx(reference, rel=1e-7, abs=1e-9)
    assert ours > 0.1


def test_feature_moments_are_the_mean_and_the_unbiased_covariance():
    a = features(50, 4, 2)
    mu, sigma = feature_moments(a.astype(np.float32))
    centred = a - a.mean(0)
    np.testing.assert_allclose(mu, a.mean(0), rtol=1e-6)
    np.testing.assert_allclose(sigma, centred.T @ centred / 49, rtol=1e-5, atol=1e-6)


def test_the_distance_of_a_distribution_to_itself_is_zero():
    a = features(300, 24, 3)
    assert abs(frechet_distance(*feature_moments(a), *feature_moments(a))) < 1e-9


def test_mismatched_statistics_are_refused():
    with pytest.raises(ValueError, match="mismatched statistics"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def brute_force_mmd2(x, y):
    """Unbiased MMD² with k(a, b) = (a·b/d + 1)³, every pair written out."""
    d, m = x.shape[1], len(x)
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_with_one_subset_of_everything_is_the_unbiased_mmd():
    x, y = features(30, 5, 4), features(30, 5, 5, shift=0.5)
    rng = np.random.default_rng(0)
    kid = kernel_inception_distance(x, y, rng, num_subsets=3, max_subset_size=100)  # m = 30: subsets are permutations
    assert kid == pytest.approx(brute_force_mmd2(x, y), rel=1e-10)


def test_kid_averages_subsets_drawn_generated_first_then_real():
    x, y = features(40, 4, 6), features(50, 4, 7, shift=0.2)
    kid = kernel_inception_distance(x, y, np.random.default_rng(11), num_subsets=4, max_subset_size=12)
    rng = np.random.default_rng(11)
    draws = [(rng.choice(40, 12, replace=False), rng.choice(50, 12, replace=False)) for _ in range(4)]
    assert kid == pytest.approx(np.mean([brute_force_mmd2(x[i], y[j]) for i, j in draws]), rel=1e-10)


def test_kid_defaults_are_stylegan2_adas():
    assert (KID_NUM_SUBSETS, KID_MAX_SUBSET_SIZE) == (100, 1000)
