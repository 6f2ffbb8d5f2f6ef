"""alae.networks.layers against independent float64 formulations written with plain torch.nn.functional."""
import math

import pytest
import torch
import torch.nn.functional as F

from alae.networks.layers import (
    AdaptiveInstanceNorm,
    DownsampleConv2d,
    EqualizedConv2d,
    EqualizedLinear,
    FusedUpsampleConv2d,
    NoiseInjection,
    UpsampleConv2d,
    blur,
    downsample2x,
    pixel_norm,
    upsample2x,
)


def _randomize_biases(module):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.normal_()


@pytest.mark.parametrize("lr_mul", [1.0, 0.1])
@pytest.mark.parametrize("gain", [math.sqrt(2), 1.0])
def test_equalized_linear_scales_weight_by_gain_over_sqrt_fan_in_times_lr_mul(gain, lr_mul):
    torch.manual_seed(0)
    layer = EqualizedLinear(24, 10, gain=gain, lr_mul=lr_mul).double()
    _randomize_biases(layer)
    x = torch.randn(5, 24, dtype=torch.float64)
    expected = F.linear(x, layer.weight * (gain / math.sqrt(24) * lr_mul), layer.bias * lr_mul)
    torch.testing.assert_close(layer(x), expected)


def test_equalized_linear_init_is_unit_scale_over_lr_mul_with_zero_bias():
    torch.manual_seed(0)
    layer = EqualizedLinear(512, 512, lr_mul=0.1)
    assert abs(layer.weight.std().item() - 10.0) < 0.1
    assert torch.all(layer.bias == 0)


def test_equalized_linear_lrelu_is_leaky_relu_0_2_without_gain():
    torch.manual_seed(0)
    layer = EqualizedLinear(8, 6, lr_mul=0.1, activation="lrelu").double()
    _randomize_biases(layer)
    x = torch.randn(4, 8, dtype=torch.float64)
    pre = F.linear(x, layer.weight * (math.sqrt(2) / math.sqrt(8) * 0.1), layer.bias * 0.1)
    torch.testing.assert_close(layer(x), F.leaky_relu(pre, 0.2))


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_equalized_conv_scales_weight_by_gain_over_sqrt_fan_in(kernel_size):
    torch.manual_seed(0)
    layer = EqualizedConv2d(5, 7, kernel_size, gain=0.03).double()
    _randomize_biases(layer)
    x = torch.randn(2, 5, 8, 8, dtype=torch.float64)
    w = layer.weight * (0.03 / math.sqrt(5 * kernel_size**2))
    torch.testing.assert_close(layer(x), F.conv2d(x, w, layer.bias, padding=kernel_size // 2))


def test_equalized_conv_lrelu_uses_the_given_slope():
    torch.manual_seed(0)
    layer = EqualizedConv2d(3, 4, 1, activation="lrelu", lrelu_slope=0.04).double()
    _randomize_biases(layer)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    pre = F.conv2d(x, layer.weight * (math.sqrt(2) / math.sqrt(3)), layer.bias)
    torch.testing.assert_close(layer(x), F.leaky_relu(pre, 0.04))


def test_fused_upsample_conv_equals_nearest_upsample_then_3x3_conv():
    """Reference: nearest 2x upsampling, then a stride-1 transposed conv with the plain 3x3 kernel."""
    torch.manual_seed(0)
    layer = FusedUpsampleConv2d(6, 4).double()
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    up = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    w = layer.weight * (math.sqrt(2) / math.sqrt(6 * 9))  # fan_in counts the transposed conv's inputs
    expected = F.conv_transpose2d(up, w, padding=1)
    torch.testing.assert_close(layer(x), expected)


def test_upsample_conv_equals_nearest_upsample_then_3x3_conv_at_every_pixel():
    """Reference: upsample by repeating pixels, then a plain zero-padded 3x3 conv (the original's
    non-fused layer); borders included."""
    torch.manual_seed(0)
    layer = UpsampleConv2d(6, 4).double()
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    up = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    expected = F.conv2d(up, layer.weight * (math.sqrt(2) / math.sqrt(6 * 9)), padding=1)
    torch.testing.assert_close(layer(x), expected)


def test_downsample_conv_equals_3x3_conv_then_average_pool():
    torch.manual_seed(0)
    layer = DownsampleConv2d(6, 4).double()
    x = torch.randn(2, 6, 8, 10, dtype=torch.float64)
    w = layer.weight * (math.sqrt(2) / math.sqrt(6 * 9))
    expected = F.avg_pool2d(F.conv2d(x, w, padding=1), 2)
    torch.testing.assert_close(layer(x), expected)


def test_resampling_helpers_are_nearest_upsampling_and_average_pooling():
    x = torch.randn(2, 3, 6, 4, dtype=torch.float64)
    torch.testing.assert_close(upsample2x(x), x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))
    torch.testing.assert_close(downsample2x(x), F.avg_pool2d(x, 2))


def test_blur_is_normalized_121_filter_with_zero_padding():
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    p = F.pad(x, (1, 1, 1, 1))  # brute force: the 9 weighted shifts of the zero-padded image
    expected = sum(((2 - abs(dy)) * (2 - abs(dx)) / 16) * p[:, :, 1 + dy:7 + dy, 1 + dx:6 + dx]
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    torch.testing.assert_close(blur(x), expected)


def test_blur_derivatives_of_first_and_second_order_are_exact():
    """Its backward is hand-written (the blur is self-adjoint): torch's numerical gradcheck and
    gradgradcheck in float64 confirm both orders."""
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(blur, (x,))
    assert torch.autograd.gradgradcheck(blur, (x,))


def test_noise_injection_starts_at_zero_and_broadcasts_one_map_over_channels():
    layer = NoiseInjection(4).double()
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    noise = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(layer(x, noise), x)
    assert layer(x, None) is x
    with torch.no_grad():
        layer.weight.copy_(torch.arange(1.0, 5.0))
    torch.testing.assert_close(layer(x, noise), x + torch.arange(1.0, 5.0).view(1, 4, 1, 1).double() * noise)


def test_adaptive_instance_norm_is_instance_norm_then_style_mod():
    torch.manual_seed(0)
    layer = AdaptiveInstanceNorm(5, 16).double()
    _randomize_biases(layer)
    x = torch.randn(3, 5, 4, 4, dtype=torch.float64)
    w = torch.randn(3, 16, dtype=torch.float64)
    style = F.linear(w, layer.style.weight / math.sqrt(16), layer.style.bias)  # gain 1
    scale, shift = style[:, :5, None, None], style[:, 5:, None, None]
    expected = F.instance_norm(x, eps=1e-8) * (1 + scale) + shift
    torch.testing.assert_close(layer(x, w), expected)


def test_pixel_norm_gives_unit_mean_square_per_sample():
    z = torch.randn(4, 32, dtype=torch.float64) * 7
    torch.testing.assert_close(pixel_norm(z).square().mean(dim=1), torch.ones(4, dtype=torch.float64))
