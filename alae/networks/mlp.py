"""The MLP networks of the MNIST configs: the original code's EncoderFC / GeneratorFC (podgorskiy/ALAE
mnist branches, net.py) and, by the model options, the MLPs of the references the other objectives
copy (pytorch/examples' VAE, musyoku's AAE, the WAE code's MLP).

E: images [N, C, R, R] → flatten → `layers` × (Linear(→ width) + activation) → Linear(→ out_dim)
[+ LeakyReLU(code_slope): the original EncoderFC ends with one, as its w = F(z) does; codes
matched to a prior need the linear end]. `features` also gives the last hidden layer's output
(the penultimate features BiGAN's and ALAE's MNIST evaluations classify).
G: code [N, L ≥ 1, latent] (layer 0 is used: the model has one code) → `layers` × (Linear(→ width)
+ activation) → Linear(→ C·R²) → raw images [N, C, R, R] (the model maps them to pixels).

The original: width 1024, 2 layers; E's hidden LeakyReLUs have slope 0.2, its last one and G's
have F.leaky_relu's default 0.01. The layers are `Dense` (model.layers: equalized in the
original, ordinary in the references). Both networks take (and ignore) the lod/alpha/noise
arguments of the style networks, so one model class drives either backbone.
"""
from __future__ import annotations

import torch
from torch import nn

from alae.networks.dense import Dense
from alae.networks.layers import LRELU_SLOPE


def hidden_stack(dense: Dense, in_features: int, width: int, layers: int, activation: str,
                 slope: float) -> list[nn.Module]:
    """`layers` layers in_features → width → … → width, each followed by the activation."""
    return [dense(in_features if i == 0 else width, width, activation, slope) for i in range(layers)]


class MLPEncoder(nn.Module):
    """E: images [N, C, R, R] → [N, out_dim]; final_activation 'lrelu' (slope final_slope: the
    original's, for ALAE) or 'linear'."""

    def __init__(self, image_channels: int, resolution: int, width: int, out_dim: int, final_activation: str,
                 layers: int = 2, activation: str = "lrelu", slope: float = LRELU_SLOPE,
                 final_slope: float = LRELU_SLOPE, dense: Dense = Dense()):
        super().__init__()
        in_features = image_channels * resolution * resolution
        self.layers = nn.ModuleList([*hidden_stack(dense, in_features, width, layers, activation, slope),
                                     dense(width, out_dim, final_activation, final_slope)])

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the last hidden layer's output [N, width], E's output [N, out_dim])."""
        x = images.flatten(1)
        for layer in self.layers[:-1]:
            x = layer(x)
        return x, self.layers[-1](x)

    def forward(self, images: torch.Tensor, lod: int = 0, alpha: float = 1.0) -> torch.Tensor:
        return self.features(images)[1]


class MLPGenerator(nn.Module):
    """G: codes [N, L ≥ 1, latent] → raw images [N, C, R, R]."""

    def __init__(self, latent_dim: int, width: int, image_channels: int, resolution: int, layers: int = 2,
                 activation: str = "lrelu", slope: float = LRELU_SLOPE, dense: Dense = Dense()):
        super().__init__()
        self.image_shape = (image_channels, resolution, resolution)
        self.layers = nn.ModuleList([*hidden_stack(dense, latent_dim, width, layers, activation, slope),
                                     dense(width, image_channels * resolution * resolution)])

    def noise_shapes(self, lod: int) -> list[tuple[int, int, int]]:
        """No noise inputs."""
        return []

    def forward(self, styles: torch.Tensor, lod: int = 0, alpha: float = 1.0, noise=None) -> torch.Tensor:
        x = styles[:, 0]
        for layer in self.layers:
            x = layer(x)
        return x.view(-1, *self.image_shape)
