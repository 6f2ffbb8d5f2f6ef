"""The four StyleALAE networks: mapping F (z → w), generator G (styles → image), encoder E
(image → w) and discriminator D (w → logit), with progressive growing.

Levels of detail: lod 0 is 4x4, lod i is 4·2^i pixels; `channels[i]` is the width at lod i.
During a fade-in (alpha < 1) at lod > 0 the newest block is blended with the path of lod − 1
exactly as the original (podgorskiy/ALAE `net.py`: GeneratorDefault, EncoderDefault, MappingF,
MappingD). Networks take explicit sizes; `alae.model.LatentAutoencoder` builds them from a config.
"""
from __future__ import annotations

import torch
from torch import nn

from alae.lods import resolution_of
from alae.networks.dense import Dense
from alae.networks.layers import (
    DETERMINISTIC_NOISE,
    LRELU_SLOPE,
    AdaptiveInstanceNorm,
    DownsampleConv2d,
    EqualizedConv2d,
    EqualizedLinear,
    FusedUpsampleConv2d,
    NoiseInjection,
    UpsampleConv2d,
    at_least_float32,
    bias_lrelu,
    blur,
    downsample2x,
    instance_var_mean,
    pixel_norm,
    upsample2x,
)

ENCODER_NORM_EPS = 1e-5  # original E: nn.InstanceNorm2d default eps
# The original applies LeakyReLU(0.2) twice to FromRGB's output (inside FromRGB and again in
# EncoderDefault.encode); one LeakyReLU with slope 0.2² is the same function.
FROM_RGB_SLOPE = LRELU_SLOPE**2


def _check_lod_alpha(lod: int, alpha: float, num_lods: int) -> None:
    if not 0 <= lod < num_lods:
        raise ValueError(f"lod must be in [0, {num_lods}), got {lod}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


class MappingNetwork(nn.Module):
    """F: z [N, latent_dim] → w [N, latent_dim]. Pixel norm, then `num_layers` equalized linear
    layers latent→latent, each followed by LeakyReLU 0.2 (original MappingF: 8 layers, lr_mul 0.1).
    0 layers: the identity, w = z, without the pixel norm (the original's last MNIST model,
    mnist_ref's MappingFromLatent)."""

    def __init__(self, latent_dim: int, num_layers: int = 8, lr_mul: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList(
            EqualizedLinear(latent_dim, latent_dim, lr_mul=lr_mul, activation="lrelu") for _ in range(num_layers)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self.layers:
            return z
        x = pixel_norm(z)
        for layer in self.layers:
            x = layer(x)
        return x


class Discriminator(nn.Module):
    """D: codes [N, in_dim] → logits [N]. `num_layers` linear layers in_dim → width → … → width →
    num_outputs, equalized (lr_mul 0.1 in the original) or as `dense` builds them; activation
    between them 'linear' (none: the original MappingD), 'lrelu' (0.2) or 'relu'. width None:
    in_dim (the original's). The logit is output column num_outputs // 2, the one the original reads."""

    def __init__(self, in_dim: int, num_layers: int = 3, num_outputs: int = 1024, activation: str = "linear",
                 lr_mul: float = 0.1, width: int | None = None, dense: Dense = Dense()):
        super().__init__()
        width = width or in_dim
        widths = [in_dim] + [width] * (num_layers - 1) + [num_outputs]
        self.layers = nn.ModuleList(
            dense(widths[i], widths[i + 1], activation=activation if i < num_layers - 1 else "linear", lr_mul=lr_mul)
            for i in range(num_layers)
        )
        self.logit_index = num_outputs // 2

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        x = w
        for layer in self.layers:
            x = layer(x)
        return x[:, self.logit_index]


class GeneratorBlock(nn.Module):
    """One resolution of G. Unless first: upsampling conv (nearest 2x + 3x3 conv, or the fused
    stride-2 transposed conv: the same function, stored as the original stores each) and blur. Then noise, bias, LeakyReLU, AdaIN(w1); 3x3 conv, noise,
    bias, LeakyReLU, AdaIN(w2). [N, in, H, W] → [N, out, 2H, 2W] ([N, out, H, W] if first)."""

    def __init__(self, in_channels: int, out_channels: int, latent_dim: int, first: bool, fused: bool,
                 block_index: int = 0):
        super().__init__()
        if first:
            self.up_conv = None
        elif fused:
            self.up_conv = FusedUpsampleConv2d(in_channels, out_channels)
        else:
            self.up_conv = UpsampleConv2d(in_channels, out_channels)
        self.noise_1 = NoiseInjection(out_channels, block_index)
        self.bias_1 = nn.Parameter(torch.zeros(out_channels))
        self.adain_1 = AdaptiveInstanceNorm(out_channels, latent_dim)
        self.conv = EqualizedConv2d(out_channels, out_channels, 3, bias=False)
        self.noise_2 = NoiseInjection(out_channels, block_index)
        self.bias_2 = nn.Parameter(torch.zeros(out_channels))
        self.adain_2 = AdaptiveInstanceNorm(out_channels, latent_dim)

    def forward(self, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor,
                noise_1: torch.Tensor | str | None, noise_2: torch.Tensor | str | None) -> torch.Tensor:
        """w1, w2 [N, latent_dim]; noise_k [N, 1, H_out, W_out], None or DETERMINISTIC_NOISE."""
        if self.up_conv is not None:
            x = blur(self.up_conv(x))
        x = self.adain_1(bias_lrelu(self.noise_1(x, noise_1), self.bias_1), w1)
        x = self.conv(x)
        return self.adain_2(bias_lrelu(self.noise_2(x, noise_2), self.bias_2), w2)


class Generator(nn.Module):
    """G: styles [N, ≥ 2·(lod+1), latent_dim] → images [N, image_channels, R, R], R = 4·2^lod.

    A learned constant [1, channels[0], 4, 4] (ones) feeds one GeneratorBlock per resolution,
    each taking two styles; a 1x1 ToRGB conv with bias (gain `to_rgb_gain`) per resolution.
    Blocks whose output is at least `fused_scale_resolution` upsample with the fused transposed
    conv (original: from 128 px). Fade-in at lod with alpha in [0, 1):
    alpha·ToRGB_lod(block_lod(x)) + (1 − alpha)·upsample2x(ToRGB_{lod−1}(x)).
    """

    def __init__(self, channels: list[int], latent_dim: int, image_channels: int = 3,
                 fused_scale_resolution: int = 128, to_rgb_gain: float = 0.03):
        super().__init__()
        self.num_lods = len(channels)
        self.const = nn.Parameter(torch.ones(1, channels[0], 4, 4))
        self.blocks = nn.ModuleList(
            GeneratorBlock(channels[max(i - 1, 0)], c, latent_dim, first=i == 0,
                           fused=resolution_of(i) >= fused_scale_resolution, block_index=i)
            for i, c in enumerate(channels)
        )
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, image_channels, 1, gain=to_rgb_gain) for c in channels)

    def noise_shapes(self, lod: int) -> list[tuple[int, int, int]]:
        """Per-sample shapes (1, H, W) of the 2·(lod+1) noise inputs at `lod`, in the order
        forward consumes them; a batch's noise tensors are [N, 1, H, W]."""
        return [(1, resolution_of(i), resolution_of(i)) for i in range(lod + 1) for _ in range(2)]

    def _noise_inputs(self, noise, batch: int, lod: int, like: torch.Tensor) -> list[torch.Tensor | str | None]:
        shapes = [(batch, *s) for s in self.noise_shapes(lod)]
        if isinstance(noise, str):
            if noise == "random":
                return [torch.randn(s, device=like.device, dtype=like.dtype) for s in shapes]
            if noise == "none":
                return [None] * len(shapes)
            if noise == DETERMINISTIC_NOISE:
                return [DETERMINISTIC_NOISE] * len(shapes)
            raise ValueError(f"noise must be 'random', 'none', '{DETERMINISTIC_NOISE}' or a list of tensors, "
                             f"got {noise!r}")
        noise = list(noise)
        if [tuple(n.shape) for n in noise] != shapes:
            raise ValueError(f"noise at lod {lod} must be {len(shapes)} tensors of shapes {shapes}, "
                             f"got {[tuple(n.shape) for n in noise]}")
        return noise

    def forward(self, styles: torch.Tensor, lod: int, alpha: float = 1.0, noise="random") -> torch.Tensor:
        """styles [N, L, latent_dim] with L ≥ 2·(lod+1); alpha in [0, 1] (ignored at lod 0);
        noise 'random' (torch RNG), 'none', 'deterministic' (the original's noise=False) or a list
        of tensors shaped as `noise_shapes(lod)`."""
        _check_lod_alpha(lod, alpha, self.num_lods)
        if styles.ndim != 3 or styles.shape[1] < 2 * (lod + 1):
            raise ValueError(f"styles must be [N, >= {2 * (lod + 1)}, latent] at lod {lod}, got {tuple(styles.shape)}")
        batch = styles.shape[0]
        noise = self._noise_inputs(noise, batch, lod, styles)
        fading = lod > 0 and alpha < 1
        x = self.const.expand(batch, -1, -1, -1)
        for i in range(lod + 1):
            if fading and i == lod:
                previous = upsample2x(self.to_rgb[lod - 1](x))
            x = self.blocks[i](x, styles[:, 2 * i], styles[:, 2 * i + 1], noise[2 * i], noise[2 * i + 1])
        image = self.to_rgb[lod](x)
        return torch.lerp(previous, image, alpha) if fading else image


def _style_statistics_and_normalize(x: torch.Tensor, std_eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """x [N, C, H, W] → (instance-normalized x, [N, 2C] per-channel means then stds
    sqrt(var + std_eps) over H, W), both in at least float32."""
    x = at_least_float32(x)
    var, mean = instance_var_mean(x)
    stats = torch.cat([mean, torch.sqrt(var + std_eps)], dim=1).flatten(1)
    normalized = (x - mean) * torch.rsqrt(var + ENCODER_NORM_EPS)
    return normalized, stats


class EncoderBlock(nn.Module):
    """One resolution of E: 3x3 conv + bias + LeakyReLU → style statistics → w1 → instance norm →
    blur → downsampling conv (3x3 conv + 2x2 average pool as one stride-2 conv: the original's
    fused and non-fused layers are the same function) + bias + LeakyReLU → statistics → w2 →
    instance norm. The statistics linears (2C → latent) keep the original's
    default gain √2. [N, in, H, W] → ([N, out, H/2, W/2], w1 [N, latent], w2 [N, latent])."""

    def __init__(self, in_channels: int, out_channels: int, latent_dim: int, std_eps: float):
        super().__init__()
        self.conv = EqualizedConv2d(in_channels, in_channels, 3, activation="lrelu")
        self.style_1 = EqualizedLinear(2 * in_channels, latent_dim)
        self.down_conv = DownsampleConv2d(in_channels, out_channels)
        self.bias_2 = nn.Parameter(torch.zeros(out_channels))
        self.style_2 = EqualizedLinear(2 * out_channels, latent_dim)
        self.std_eps = std_eps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, stats_1 = _style_statistics_and_normalize(self.conv(x), self.std_eps)
        x = self.down_conv(blur(x))
        x, stats_2 = _style_statistics_and_normalize(bias_lrelu(x, self.bias_2), self.std_eps)
        return x, self.style_1(stats_1).to(stats_1.dtype), self.style_2(stats_2).to(stats_2.dtype)


class Encoder(nn.Module):
    """E: images [N, image_channels, R, R], R = 4·2^lod → w [N, latent_dim].

    FromRGB (1x1 conv + bias + LeakyReLU) at the input resolution, then one EncoderBlock per
    resolution down to 4x4 (whose block, as the original, still downsamples to 2x2); w is the sum
    of every active block's w1 + w2. Fade-in at lod with
    alpha < 1: the top block sees FromRGB_lod(x), the next block sees alpha·(top block's output)
    + (1 − alpha)·FromRGB_{lod−1}(avgpool(x)), and the top block's w1, w2 are scaled by alpha.
    The style stds are sqrt(var + std_eps): the original has no epsilon (std_eps 0); a small one
    keeps R1's second derivatives finite where a channel is constant. The terms are summed in
    the original's order, so converted original weights give its w to the last bit of rounding.
    """

    def __init__(self, channels: list[int], latent_dim: int, image_channels: int = 3, std_eps: float = 1e-8):
        super().__init__()
        self.num_lods = len(channels)
        self.from_rgb = nn.ModuleList(
            EqualizedConv2d(image_channels, c, 1, activation="lrelu", lrelu_slope=FROM_RGB_SLOPE) for c in channels
        )
        self.blocks = nn.ModuleList(
            EncoderBlock(c, channels[max(i - 1, 0)], latent_dim, std_eps=std_eps) for i, c in enumerate(channels)
        )

    def forward(self, images: torch.Tensor, lod: int, alpha: float = 1.0) -> torch.Tensor:
        """images [N, C, R, R] at R = 4·2^lod; alpha in [0, 1] (ignored at lod 0)."""
        _check_lod_alpha(lod, alpha, self.num_lods)
        r = resolution_of(lod)
        if images.ndim != 4 or images.shape[2:] != (r, r):
            raise ValueError(f"images at lod {lod} must be [N, C, {r}, {r}], got {tuple(images.shape)}")
        x, w1, w2 = self.blocks[lod](self.from_rgb[lod](images))
        if lod > 0 and alpha < 1:
            w = w1 * alpha + w2 * alpha
            x = torch.lerp(self.from_rgb[lod - 1](downsample2x(images)).to(x.dtype), x, alpha)
        else:
            w = w1 + w2
        for i in range(lod - 1, -1, -1):
            x, w1, w2 = self.blocks[i](x)
            w = w + (w1 + w2)
        return w
