"""Per-image reconstruction metrics: MSE, PSNR and SSIM of two [N, C, H, W] batches in [0, 1].

Each metric returns a float64 tensor [N] (one value per image) on the inputs' device and is
computed in float64. The data range is 1. SSIM is Wang et al. (2004) as
``skimage.metrics.structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1.0, channel_axis=...)`` computes it: an 11×11 Gaussian
window (σ = 1.5, cut off at radius 5), population covariances, K1 = 0.01, K2 = 0.03, the SSIM
map averaged over the pixels at least 5 from every border, then over channels. skimage filters
with reflect padding and then crops those 5-pixel borders, so only pixels that the window sees
without padding are left; this module filters without padding ('valid') and gets the same
region.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_SIGMA = 1.5  # Wang et al. 2004, Gaussian window σ
SSIM_RADIUS = int(3.5 * SSIM_SIGMA + 0.5)  # 5: skimage cuts the Gaussian off at 3.5σ (scipy.ndimage rounding)
SSIM_WINDOW = 2 * SSIM_RADIUS + 1  # 11
SSIM_K1 = 0.01  # Wang et al. 2004
SSIM_K2 = 0.03  # Wang et al. 2004


def _as_float64(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Check that a and b are floating [N, C, H, W] batches of one shape; return them in float64."""
    if a.ndim != 4 or a.shape != b.shape:
        raise ValueError(f"expected two [N, C, H, W] batches of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if not (a.is_floating_point() and b.is_floating_point()):
        raise ValueError(f"expected floating-point images in [0, 1], got {a.dtype} and {b.dtype}")
    return a.double(), b.double()


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image: [N, C, H, W] × 2 in [0, 1] → float64 [N]."""
    a, b = _as_float64(a, b)
    return (a - b).square().mean(dim=(1, 2, 3))


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio 10·log10(1 / MSE) in dB per image: → float64 [N]; inf where a == b."""
    return 10 * torch.log10(1 / mse(a, b))


def _gaussian_window(device: torch.device) -> torch.Tensor:
    """The normalized 1-D Gaussian, float64 [SSIM_WINDOW] (the SSIM window is its outer product)."""
    x = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64, device=device)
    w = torch.exp(-0.5 * (x / SSIM_SIGMA).square())
    return w / w.sum()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean structural similarity per image: [N, C, H, W] × 2 in [0, 1], H, W ≥ 11 → float64 [N] in [−1, 1].

    1 where a == b. The mean is over channels and over the (H − 10) × (W − 10) pixels whose
    11×11 window lies inside the image.
    """
    a, b = _as_float64(a, b)
    n, c, h, w = a.shape
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}×{SSIM_WINDOW} pixels (its window), "
                         f"got {h}×{w}")
    window = _gaussian_window(a.device)
    maps = torch.cat([a, b, a * a, b * b, a * b], dim=1).reshape(n * 5 * c, 1, h, w)
    maps = F.conv2d(maps, window.view(1, 1, 1, SSIM_WINDOW))
    maps = F.conv2d(maps, window.view(1, 1, SSIM_WINDOW, 1))
    mu_a, mu_b, mean_aa, mean_bb, mean_ab = maps.view(n, 5, c, h - 2 * SSIM_RADIUS, w - 2 * SSIM_RADIUS).unbind(1)
    var_a = mean_aa - mu_a * mu_a
    var_b = mean_bb - mu_b * mu_b
    cov_ab = mean_ab - mu_a * mu_b
    c1, c2 = SSIM_K1**2, SSIM_K2**2  # (K·data range)², data range 1
    s = (2 * mu_a * mu_b + c1) * (2 * cov_ab + c2) / ((mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2))
    return s.mean(dim=(1, 2, 3))
