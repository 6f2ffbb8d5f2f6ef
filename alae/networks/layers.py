"""Building blocks of the ALAE networks: equalized-learning-rate layers, resampling, noise, AdaIN.

Bias+activation runs on the `alae.kernels` op, and so does the blur where the fused CUDA kernels
run (elsewhere the blur is a self-adjoint depthwise conv); nearest 2x upsampling and 2x2
average pooling are torch's own ops; a 3x3 conv next to a 2x resampling runs as one stride-2
(transposed) conv with 2.25x fewer multiply-adds; instance statistics take two plain passes on
the CPU (docs/PERFORMANCE.md). Defaults are those of the original implementation (podgorskiy/ALAE,
`net.py` and `lreq.py`).

Equalized learning rate: a weight is stored at unit scale, N(0, 1/lr_mul), and multiplied in
forward by ``gain / sqrt(fan_in) * lr_mul``; a bias is stored at zero and multiplied by lr_mul.
Plain Adam then sees every layer at the same scale.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from alae.kernels import bias_act, filter2d, resolve_impl, setup_filter

DEFAULT_GAIN = math.sqrt(2.0)  # original lreq default gain
LRELU_SLOPE = 0.2  # original: F.leaky_relu(x, 0.2) everywhere
PIXEL_NORM_EPS = 1e-8  # original pixel_norm epsilon
STYLE_NORM_EPS = 1e-8  # original G: nn.InstanceNorm2d(eps=1e-8)


@functools.lru_cache(maxsize=None)
def _blur_filter(device: torch.device) -> torch.Tensor:
    return setup_filter([1, 2, 1], device=device)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling: [N, C, H, W] → [N, C, 2H, 2W] (original `upscale2d`)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling: [N, C, H, W] → [N, C, H/2, W/2] (original `downscale2d`); H, W even."""
    return F.avg_pool2d(x, 2)


@functools.lru_cache(maxsize=None)
def _blur_kernel(channels: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[1,2,1]⊗[1,2,1]/16 as a depthwise conv weight [channels, 1, 3, 3]."""
    taps = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    return (torch.outer(taps, taps) / 16).to(device=device, dtype=dtype).expand(channels, 1, 3, 3).contiguous()


class _SelfAdjointBlur(torch.autograd.Function):
    """The blur as a linear operator that is its own adjoint (a symmetric kernel with zero
    padding), so its gradient is a blur of the incoming gradient and every derivative order is
    one depthwise conv. Autograd's own double backward of a depthwise conv on the CPU also
    computes a weight gradient channel by channel, which nobody needs here."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, _blur_kernel(x.shape[1], x.dtype, x.device), padding=1, groups=x.shape[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _SelfAdjointBlur.apply(grad)


def blur(x: torch.Tensor) -> torch.Tensor:
    """[1,2,1]⊗[1,2,1]/16 low-pass filter with zero padding; shape kept (original `Blur`).

    The fused upfirdn2d kernel where the kernels run (CUDA), else `_SelfAdjointBlur`.
    """
    if resolve_impl("auto", x, op="upfirdn2d") == "cuda":
        return filter2d(x, _blur_filter(x.device))
    return _SelfAdjointBlur.apply(x)


def bias_lrelu(x: torch.Tensor, b: torch.Tensor | None, slope: float = LRELU_SLOPE) -> torch.Tensor:
    """LeakyReLU(x + b) with `b` [C] along dim 1; no output gain (the original uses F.leaky_relu)."""
    return bias_act(x, b, act="lrelu", alpha=slope, gain=1)


class _TwoPassVarMean(torch.autograd.Function):
    """Biased variance and mean over H, W in two plain reductions; the backward is written in
    differentiable ops (it re-reads x and the saved mean), so R1's double backward flows."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = (x - mean).square().mean(dim=(2, 3), keepdim=True)
        ctx.save_for_backward(x, mean)
        return var, mean

    @staticmethod
    def backward(ctx, grad_var: torch.Tensor, grad_mean: torch.Tensor) -> torch.Tensor:
        x, mean = ctx.saved_tensors
        n = x.shape[2] * x.shape[3]
        return (x - mean) * (grad_var * (2.0 / n)) + grad_mean * (1.0 / n)


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """x in float32 if it is a 16-bit float (a bf16 autocast output), else x unchanged (float64 stays)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def instance_var_mean(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel biased variance and mean over H, W: [N, C, H, W] → two [N, C, 1, 1].

    torch.var_mean on the GPU; on the CPU, where torch's var_mean reduction is about 20x slower
    than a mean, the two-pass form (docs/PERFORMANCE.md).
    """
    if x.device.type == "cuda":
        return torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    return _TwoPassVarMean.apply(x)


def pixel_norm(x: torch.Tensor, eps: float = PIXEL_NORM_EPS) -> torch.Tensor:
    """x / sqrt(mean over dim 1 of x² + eps): [N, C, ...] → same shape (original F input norm)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def _sum_of_shifts(w: torch.Tensor) -> torch.Tensor:
    """[.., .., 3, 3] kernel → [.., .., 4, 4]: zero-padded and summed over its four 1-pixel shifts.

    The original's `transform_kernel`: a stride-2 (transposed) conv with this kernel equals a
    3x3 conv combined with nearest 2x upsampling (or, divided by 4, with 2x2 average pooling).
    """
    w = F.pad(w, (1, 1, 1, 1))
    return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]


def linear_act(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, activation: str, slope: float) -> torch.Tensor:
    """x [N, in] @ w [out, in]ᵀ + b [out], then the activation ('linear', 'lrelu' with `slope`,
    'relu'; no gain): addmm for 'linear', else the matmul and bias_act's fused bias and activation."""
    if activation == "linear":
        return torch.addmm(b, x, w.t())
    return bias_act(x.matmul(w.t()), b, act=activation, alpha=slope, gain=1)


class EqualizedLinear(nn.Module):
    """Fully connected layer with equalized learning rate: [N, in_features] → [N, out_features].

    activation: 'linear', 'lrelu' (LeakyReLU with negative slope `slope`, 0.2 in the original) or
    'relu', no gain, fused with the bias via bias_act.
    """

    def __init__(self, in_features: int, out_features: int, gain: float = DEFAULT_GAIN, lr_mul: float = 1.0,
                 activation: str = "linear", slope: float = LRELU_SLOPE):
        super().__init__()
        if activation not in ("linear", "lrelu", "relu"):
            raise ValueError(f"activation must be linear, lrelu or relu, got {activation!r}")
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.weight_gain = gain / math.sqrt(in_features) * lr_mul
        self.lr_mul = lr_mul
        self.activation, self.slope = activation, slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bias if self.lr_mul == 1 else self.bias * self.lr_mul
        return linear_act(x, self.weight * self.weight_gain, b, self.activation, self.slope)

    def extra_repr(self) -> str:
        out_features, in_features = self.weight.shape
        slope = f", slope={self.slope}" if self.activation == "lrelu" else ""
        return f"{in_features}, {out_features}, lr_mul={self.lr_mul}, activation={self.activation}{slope}"


class EqualizedConv2d(nn.Module):
    """k x k convolution, stride 1, 'same' zero padding, equalized learning rate.

    [N, in_channels, H, W] → [N, out_channels, H, W]. With `bias`, the bias and activation
    ('linear' or 'lrelu' with negative slope `lrelu_slope`, no gain) follow via bias_act.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = DEFAULT_GAIN,
                 bias: bool = True, activation: str = "linear", lrelu_slope: float = LRELU_SLOPE):
        super().__init__()
        if activation not in ("linear", "lrelu"):
            raise ValueError(f"activation must be 'linear' or 'lrelu', got {activation!r}")
        if activation == "lrelu" and not bias:
            raise ValueError("an activation needs the layer's bias (bias=True)")
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2
        self.activation = activation
        self.lrelu_slope = lrelu_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.activation == "linear":
            return F.conv2d(x, w, self.bias, padding=self.padding)
        return bias_lrelu(F.conv2d(x, w, padding=self.padding), self.bias, self.lrelu_slope)

    def extra_repr(self) -> str:
        out_channels, in_channels, k, _ = self.weight.shape
        return (f"{in_channels}, {out_channels}, kernel_size={k}, bias={self.bias is not None}, "
                f"activation={self.activation}")


def _upsample_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Nearest 2x upsampling + 3x3 conv as one stride-2 transposed conv.

    kernel: [in, out, 3, 3] in transposed-conv layout. [N, in, H, W] → [N, out, 2H, 2W], with
    16 multiply-adds per input pixel and channel pair where upsampling first costs 36.
    """
    return F.conv_transpose2d(x, _sum_of_shifts(kernel), stride=2, padding=1)


class UpsampleConv2d(nn.Module):
    """Nearest 2x upsampling then a 3x3 conv (no bias): the original G's layer below 128 px.

    The weight is stored [out, in, 3, 3] as a plain conv's (fan_in = in_channels·9). It runs
    as `_upsample_conv` with the kernel flipped and transposed, which equals
    conv3x3(upsample2x(x)) exactly, borders included. [N, in, H, W] → [N, out, 2H, 2W].
    """

    def __init__(self, in_channels: int, out_channels: int, gain: float = DEFAULT_GAIN):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.weight_gain = gain / math.sqrt(in_channels * 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _upsample_conv(x, (self.weight * self.weight_gain).flip(2, 3).transpose(0, 1))


class FusedUpsampleConv2d(nn.Module):
    """The original's fused stride-2 transposed conv (no bias), from 128 px up.

    The same function family as UpsampleConv2d; only the storage differs: the 3x3 kernel is
    kept [in, out, 3, 3] like a transposed conv's and used unflipped, as the original stores
    it. fan_in = in_channels·9. [N, in, H, W] → [N, out, 2H, 2W].
    """

    def __init__(self, in_channels: int, out_channels: int, gain: float = DEFAULT_GAIN):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_channels, out_channels, 3, 3))
        self.weight_gain = gain / math.sqrt(in_channels * 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _upsample_conv(x, self.weight * self.weight_gain)


class DownsampleConv2d(nn.Module):
    """A 3x3 conv (no bias) then 2x2 average pooling, as one stride-2 conv.

    The original has two layers for this, conv + `downscale2d` below 128 px and a fused
    stride-2 conv from 128 px up; both store the kernel [out, in, 3, 3] with fan_in
    in_channels·9 and compute the same function, so one layer serves both. The kernel is
    padded to 4x4 and averaged over its four shifts: 16 multiply-adds per output pixel and
    channel pair instead of 36. [N, in, H, W] → [N, out, H/2, W/2]; H, W even.
    """

    def __init__(self, in_channels: int, out_channels: int, gain: float = DEFAULT_GAIN):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.weight_gain = gain / math.sqrt(in_channels * 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, _sum_of_shifts(self.weight * self.weight_gain) * 0.25, stride=2, padding=1)


DETERMINISTIC_NOISE = "deterministic"  # the original G's replacement for noise when called with noise=False


class NoiseInjection(nn.Module):
    """x + weight[c]·noise: a per-pixel map [N, 1, H, W] shared by all channels, per-channel weight.

    The weight starts at zero (original), so noise has no effect until it is learned.
    `DETERMINISTIC_NOISE` instead applies what the original generator does when called with
    noise=False: x + 0.8·s·exp(−x²/2s²)/√(2π) with s = √(block_index + 1), whatever the weight.
    """

    def __init__(self, channels: int, block_index: int = 0):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))
        self.deterministic_scale = math.sqrt(block_index + 1)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | str | None) -> torch.Tensor:
        """x [N, C, H, W]; noise [N, 1, H, W], None (no noise) or DETERMINISTIC_NOISE. Returns [N, C, H, W]."""
        if noise is None:
            return x
        if isinstance(noise, str):
            s = self.deterministic_scale
            return x + s * torch.exp(-x * x / (2.0 * s * s)) * (0.8 / math.sqrt(2.0 * math.pi))
        return torch.addcmul(x, noise, self.weight.view(1, -1, 1, 1))


class AdaptiveInstanceNorm(nn.Module):
    """Instance norm, then x·(1 + scale) + shift with (scale, shift) = Linear(w) (original `style_mod`).

    The style layer maps latent_dim → 2·channels with gain 1 (original). The normalization and
    modulation are fused into one multiply-add per element, in at least float32 (under bf16
    autocast only the style linear runs in bf16).
    """

    def __init__(self, channels: int, latent_dim: int, eps: float = STYLE_NORM_EPS):
        super().__init__()
        self.style = EqualizedLinear(latent_dim, 2 * channels, gain=1.0)
        self.eps = eps

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x [N, C, H, W], w [N, latent_dim] → [N, C, H, W]."""
        x = at_least_float32(x)
        scale, shift = self.style(w)[:, :, None, None].to(x.dtype).chunk(2, dim=1)
        var, mean = instance_var_mean(x)
        a = (1 + scale) * torch.rsqrt(var + self.eps)
        return torch.addcmul(shift - mean * a, x, a)
