"""Fully connected layers in either parametrisation, for the MLP networks and the adversaries on codes.

`model.layers` picks how a weight is stored, which decides what an optimizer's learning rate means:
- equalized (ALAE's and StyleGAN's): the parameter θ ~ N(0, 1) and the layer uses W = c·θ with
  c = gain/√fan_in (`EqualizedLinear`); Adam moves every θ by about lr, so W moves by about c·lr
  (a 1024-wide layer: lr/22.6);
- ordinary (torch.nn.Linear's, the VAE, AAE and WAE references'): the parameter is W itself
  (`OrdinaryLinear`); Adam moves W by about lr. A learning-rate multiplier m (D's
  model.discriminator_lr_mul) stores W/m and uses m times it, so that Adam moves W by about m·lr,
  as it does for an equalized layer; m = 1 is the plain layer.
`model.init` picks an ordinary layer's initial weights: he (N(0, 1)·c: the equalized layer's
function, drawn from the same numbers), torch (nn.Linear's: U(±1/√fan_in), its bias too) or
normal (N(0, model.init_std), bias 0: the AAE and WAE references' 0.01). Equalized layers are N(0, 1)
by definition.

Activations: linear, lrelu (LeakyReLU with its negative slope) or relu, fused with the bias.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from alae.networks.layers import DEFAULT_GAIN, LRELU_SLOPE, EqualizedLinear, linear_act


@dataclass(frozen=True)
class Dense:
    """How a network builds its fully connected layers (ModelConfig.layers, init, init_std)."""

    layers: str = "equalized"  # equalized | ordinary
    init: str = "he"  # ordinary layers: he | torch | normal
    init_std: float = 0.01  # init normal: the weights' standard deviation

    def __call__(self, in_features: int, out_features: int, activation: str = "linear", slope: float = LRELU_SLOPE,
                 lr_mul: float = 1.0) -> nn.Module:
        """A layer [N, in_features] → [N, out_features] followed by `activation` (linear | lrelu | relu)."""
        if self.layers == "equalized":
            return EqualizedLinear(in_features, out_features, lr_mul=lr_mul, activation=activation, slope=slope)
        return OrdinaryLinear(in_features, out_features, activation, slope, self.init, self.init_std, lr_mul)


class OrdinaryLinear(nn.Module):
    """y = activation(x Wᵀ + b) with W [out, in] and b [out] the parameters, divided by lr_mul
    (module docstring)."""

    def __init__(self, in_features: int, out_features: int, activation: str = "linear", slope: float = LRELU_SLOPE,
                 init: str = "he", init_std: float = 0.01, lr_mul: float = 1.0):
        super().__init__()
        if activation not in ("linear", "lrelu", "relu"):
            raise ValueError(f"activation must be linear, lrelu or relu, got {activation!r}")
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.activation, self.slope, self.init, self.lr_mul = activation, slope, init, lr_mul
        with torch.no_grad():
            if init == "he":  # EqualizedLinear's N(0, 1) draw, at the scale it is used
                self.weight.copy_(torch.randn(out_features, in_features) * (DEFAULT_GAIN / math.sqrt(in_features)))
            elif init == "torch":  # nn.Linear.reset_parameters: kaiming_uniform_(a=√5) and its bias rule
                bound = 1 / math.sqrt(in_features)
                self.weight.uniform_(-bound, bound)
                self.bias.uniform_(-bound, bound)
            elif init == "normal":
                self.weight.normal_(0.0, init_std)
            else:
                raise ValueError(f"init must be he, torch or normal, got {init!r}")
            if lr_mul != 1:
                self.weight.div_(lr_mul)
                self.bias.div_(lr_mul)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = (self.weight, self.bias) if self.lr_mul == 1 else (self.weight * self.lr_mul, self.bias * self.lr_mul)
        return linear_act(x, w, b, self.activation, self.slope)

    def extra_repr(self) -> str:
        out_features, in_features = self.weight.shape
        slope = f", slope={self.slope}" if self.activation == "lrelu" else ""
        lr_mul = f", lr_mul={self.lr_mul}" if self.lr_mul != 1 else ""
        return f"{in_features}, {out_features}, activation={self.activation}{slope}, init={self.init}{lr_mul}"
