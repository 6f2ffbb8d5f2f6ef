"""The arithmetic of FID and KID on feature vectors (float64, numpy).

    mu, sigma = feature_moments(features)                        # [N, D] → [D], [D, D]
    fid = frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)
    kid = kernel_inception_distance(gen_features, real_features, rng)

Fréchet distance (Heusel et al. 2017): ‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2·(Σ1Σ2)^½). The trace of the
matrix square root is taken as Σ √λ over the eigenvalues λ of the symmetric Σ1^½ Σ2 Σ1^½, which
has the same eigenvalues as Σ1Σ2; for positive semi-definite inputs this equals what
StyleGAN2-ADA and clean-fid compute with `scipy.linalg.sqrtm(Σ1 @ Σ2)`, and it is exact for
the singular covariances of fewer samples than dimensions.

KID (Bińkowski et al. 2018) exactly as StyleGAN2-ADA's metrics/kernel_inception_distance.py:
`num_subsets` times, draw m = min(n_gen, n_real, max_subset_size) generated and m real
features without replacement, and average the unbiased MMD² estimate under the polynomial
kernel k(x, y) = (x·y / D + 1)³.
"""
from __future__ import annotations

import numpy as np

KID_NUM_SUBSETS = 100  # StyleGAN2-ADA kid50k / kid50k_full
KID_MAX_SUBSET_SIZE = 1000  # StyleGAN2-ADA kid50k / kid50k_full


def feature_moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] (float64) of features [N, D], N ≥ 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"expected at least two feature vectors [N, D], got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative rounding clipped)."""
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2): means [D], covariances [D, D] → ≥ 0."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"mismatched statistics: means {mu1.shape} and {mu2.shape}, covariances {sigma1.shape} "
                         f"and {sigma2.shape}")
    root1 = _psd_sqrt(sigma1)
    product = root1 @ sigma2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def kernel_inception_distance(gen_features: np.ndarray, real_features: np.ndarray, rng: np.random.Generator,
                              num_subsets: int = KID_NUM_SUBSETS,
                              max_subset_size: int = KID_MAX_SUBSET_SIZE) -> float:
    """KID of features [N_gen, D] and [N_real, D] (see the module docstring); each subset draws
    the generated rows first, then the real rows, with `rng.choice(n, m, replace=False)`."""
    x_all = np.asarray(gen_features, np.float64)
    y_all = np.asarray(real_features, np.float64)
    n = x_all.shape[1]
    m = min(x_all.shape[0], y_all.shape[0], max_subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least two generated and two real feature vectors, got {x_all.shape[0]} "
                         f"and {y_all.shape[0]}")
    total = 0.0
    for _ in range(num_subsets):
        x = x_all[rng.choice(x_all.shape[0], m, replace=False)]
        y = y_all[rng.choice(y_all.shape[0], m, replace=False)]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        total += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(total / num_subsets / m)
