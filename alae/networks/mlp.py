"""The MLP networks of the original code's MNIST model (podgorskiy/ALAE net.py: EncoderFC,
GeneratorFC): one resolution, no progressive growing, equalized learning rate throughout.

E: images [N, C, R, R] → flatten → Linear(C·R² → width) + LeakyReLU 0.2 → Linear(width → width)
+ LeakyReLU 0.2 → Linear(width → out_dim) [+ LeakyReLU 0.2: the original's EncoderFC ends with
one, as its w = F(z) does; codes matched to a prior need the linear end].
G: code [N, latent] → Linear(latent → width) + LeakyReLU 0.2 → Linear(width → width) + LeakyReLU
0.2 → Linear(width → C·R²) → images [N, C, R, R]. Width 1024 and R = 28 in the original.
Both take (and ignore) the lod/alpha/noise arguments of the style networks, so one model class
drives either backbone.
"""
from __future__ import annotations

import torch
from torch import nn

from alae.networks.layers import EqualizedLinear


class MLPEncoder(nn.Module):
    """E: images [N, C, R, R] → [N, out_dim]; final_activation 'lrelu' (original, ALAE) or 'linear'."""

    def __init__(self, image_channels: int, resolution: int, width: int, out_dim: int, final_activation: str):
        super().__init__()
        self.layers = nn.ModuleList([
            EqualizedLinear(image_channels * resolution * resolution, width, activation="lrelu"),
            EqualizedLinear(width, width, activation="lrelu"),
            EqualizedLinear(width, out_dim, activation=final_activation),
        ])

    def forward(self, images: torch.Tensor, lod: int = 0, alpha: float = 1.0) -> torch.Tensor:
        x = images.flatten(1)
        for layer in self.layers:
            x = layer(x)
        return x


class MLPGenerator(nn.Module):
    """G: codes [N, L ≥ 1, latent] (layer 0 is used: the model has one code) → images [N, C, R, R]."""

    def __init__(self, latent_dim: int, width: int, image_channels: int, resolution: int):
        super().__init__()
        self.image_shape = (image_channels, resolution, resolution)
        self.layers = nn.ModuleList([
            EqualizedLinear(latent_dim, width, activation="lrelu"),
            EqualizedLinear(width, width, activation="lrelu"),
            EqualizedLinear(width, image_channels * resolution * resolution),
        ])

    def noise_shapes(self, lod: int) -> list[tuple[int, int, int]]:
        """No noise inputs."""
        return []

    def forward(self, styles: torch.Tensor, lod: int = 0, alpha: float = 1.0, noise=None) -> torch.Tensor:
        x = styles[:, 0]
        for layer in self.layers:
            x = layer(x)
        return x.view(-1, *self.image_shape)
