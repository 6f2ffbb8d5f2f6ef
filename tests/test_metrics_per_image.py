"""alae.metrics.per_image against scikit-image's mean_squared_error, peak_signal_noise_ratio, structural_similarity."""
import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage import data
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from alae.metrics.per_image import mse, psnr, ssim


def _reference(a: torch.Tensor, b: torch.Tensor) -> dict[str, np.ndarray]:
    """skimage's metrics image by image, in float64 (skimage computes float32 inputs in float32)."""
    out = {"mse": [], "psnr": [], "ssim": []}
    for x, y in zip(a.double().numpy(), b.double().numpy()):
        rgb = x.shape[0] == 3
        x, y = (np.moveaxis(x, 0, -1), np.moveaxis(y, 0, -1)) if rgb else (x[0], y[0])
        out["mse"].append(mean_squared_error(x, y))
        out["psnr"].append(peak_signal_noise_ratio(x, y, data_range=1.0))
        out["ssim"].append(structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                                 data_range=1.0, channel_axis=-1 if rgb else None))
    return {k: np.array(v) for k, v in out.items()}


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    ref = _reference(a, b)
    for name, metric in (("mse", mse), ("psnr", psnr), ("ssim", ssim)):
        ours = metric(a, b)
        assert ours.dtype == torch.float64 and ours.shape == (a.shape[0],)
        np.testing.assert_allclose(ours.numpy(), ref[name], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("size", [(25, 25), (32, 32), (11, 11), (40, 19)])
def test_random_images_match_skimage(channels, size):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, channels, *size, generator=g)
    b = (a + 0.2 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    b[0] = torch.rand(b[0].shape, generator=g)  # an unrelated pair: SSIM near 0
    _check(a, b)


def _natural(image: np.ndarray, size: int = 128) -> torch.Tensor:
    """A uint8 skimage picture [H, W(, 3)] → [1, C, size, size] in [0, 1], cropped from its centre."""
    x = torch.from_numpy(image).float().div(255)
    x = x.permute(2, 0, 1) if x.ndim == 3 else x[None]
    top, left = (x.shape[1] - size) // 2, (x.shape[2] - size) // 2
    return x[None, :, top:top + size, left:left + size]


@pytest.mark.parametrize("picture", ["astronaut", "camera"])
def test_natural_images_with_noise_and_blur_match_skimage(picture):
    x = _natural(getattr(data, picture)())
    g = torch.Generator().manual_seed(1)
    noisy = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    blurred = torch.from_numpy(gaussian_filter(x.numpy(), sigma=(0, 0, 2, 2))).float()
    shifted = torch.roll(x, shifts=(1, 2), dims=(2, 3))
    batch = torch.cat([x, x, x])
    _check(batch, torch.cat([noisy, blurred, shifted]))


def test_identical_images_give_ssim_one_psnr_inf_mse_zero():
    a = torch.rand(2, 3, 25, 25, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(ssim(a, a.clone()), torch.ones(2, dtype=torch.float64))
    assert torch.equal(mse(a, a.clone()), torch.zeros(2, dtype=torch.float64))
    assert torch.isinf(psnr(a, a.clone())).all() and (psnr(a, a.clone()) > 0).all()


def test_psnr_is_ten_log10_of_one_over_mse():
    a = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    b = torch.full_like(a, 0.1)  # MSE 0.01 → 20 dB
    assert psnr(a, b).item() == pytest.approx(20.0, rel=1e-12)
    assert mse(a, b).item() == pytest.approx(0.01, rel=1e-12)
    assert math.isclose(psnr(a, b).item(), 10 * math.log10(1 / mse(a, b).item()))


def test_images_smaller_than_the_window_are_rejected():
    a = torch.rand(1, 3, 10, 32)
    with pytest.raises(ValueError, match="at least 11×11 pixels.*got 10×32"):
        ssim(a, a)


def test_batches_of_different_shapes_or_integer_images_are_rejected():
    with pytest.raises(ValueError, match="one shape"):
        mse(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))
    with pytest.raises(ValueError, match="one shape"):
        ssim(torch.rand(3, 16, 16), torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="floating-point"):
        psnr(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), torch.zeros(1, 3, 16, 16, dtype=torch.uint8))


@pytest.mark.cuda
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(3)
    a = torch.rand(3, 3, 32, 32, generator=g)
    b = (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    for metric in (mse, psnr, ssim):
        torch.testing.assert_close(metric(a.cuda(), b.cuda()).cpu(), metric(a, b), rtol=1e-10, atol=1e-12)
