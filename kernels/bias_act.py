"""bias_act: add a bias, apply an activation, scale by a gain and clamp, in one op.

Semantics are those of `bias_act` in NVlabs stylegan2-ada-pytorch:
``y = clamp(act(x + b) * gain, -clamp, clamp)`` with `b` broadcast along dimension `dim`.

Activations with their default `alpha` and `gain`:

=========  =====================================  =======  ========
act        function of s = x + b                  alpha    gain
=========  =====================================  =======  ========
linear     s                                      --       1
relu       max(s, 0)                              --       sqrt(2)
lrelu      s if s > 0 else alpha * s              0.2      sqrt(2)
tanh       tanh(s)                                --       1
sigmoid    1 / (1 + exp(-s))                      --       1
elu        s if s > 0 else exp(s) - 1             --       1
selu       torch.nn.functional.selu(s)            --       1
softplus   log(1 + exp(s))                        --       1
swish      s * sigmoid(s)                         --       sqrt(2)
=========  =====================================  =======  ========

`alpha` is used by lrelu only (it is accepted and ignored by the others, as in the library).
"""
import math

import torch
import torch.nn.functional as F

from .build import resolve_impl


class _Activation:
    def __init__(self, func, def_alpha, def_gain):
        self.func = func
        self.def_alpha = def_alpha
        self.def_gain = def_gain


ACTIVATIONS = {
    "linear": _Activation(lambda s, alpha: s, 0.0, 1.0),
    "relu": _Activation(lambda s, alpha: F.relu(s), 0.0, math.sqrt(2)),
    "lrelu": _Activation(lambda s, alpha: F.leaky_relu(s, alpha), 0.2, math.sqrt(2)),
    "tanh": _Activation(lambda s, alpha: torch.tanh(s), 0.0, 1.0),
    "sigmoid": _Activation(lambda s, alpha: torch.sigmoid(s), 0.0, 1.0),
    "elu": _Activation(lambda s, alpha: F.elu(s), 0.0, 1.0),
    "selu": _Activation(lambda s, alpha: F.selu(s), 0.0, 1.0),
    "softplus": _Activation(lambda s, alpha: F.softplus(s), 0.0, 1.0),
    "swish": _Activation(lambda s, alpha: torch.sigmoid(s) * s, 0.0, math.sqrt(2)),
}


def _check_args(x, b, dim, act, clamp):
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise ValueError(f"bias_act expects a floating-point tensor x, got "
                         f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}")
    if act not in ACTIVATIONS:
        raise ValueError(f"bias_act: unknown activation {act!r}; expected one of {', '.join(ACTIVATIONS)}")
    if clamp is not None and not clamp >= 0:
        raise ValueError(f"bias_act: clamp must be None or >= 0, got {clamp!r}")
    if b is not None:
        if not isinstance(b, torch.Tensor) or b.ndim != 1:
            raise ValueError("bias_act: b must be a 1-D tensor or None")
        if not 0 <= dim < x.ndim:
            raise ValueError(f"bias_act: dim={dim} out of range for a {x.ndim}-D input")
        if b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias_act: b has {b.shape[0]} elements but x.shape[{dim}] = {x.shape[dim]}")


def bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None, impl="auto"):
    """Fused bias + activation + gain + clamp.

    Args:
        x: floating-point tensor of any shape and memory format.
        b: 1-D bias with ``x.shape[dim]`` elements, or None.
        dim: the dimension of x that `b` runs along (0 <= dim < x.ndim).
        act: one of linear, relu, lrelu, tanh, sigmoid, elu, selu, softplus, swish.
        alpha: lrelu negative slope; None for the default 0.2.
        gain: output scale; None for the activation's default (see the module docstring).
        clamp: None, or clamp >= 0 to clip the output to [-clamp, clamp] after the gain.
        impl: 'auto', 'ref' or 'cuda' (the env var ALAE_KERNELS overrides it).

    Returns:
        A tensor with the shape and dtype of x, differentiable twice with respect to x and b.
    """
    _check_args(x, b, dim, act, clamp)
    spec = ACTIVATIONS[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    resolve_impl(impl, x)
    return _bias_act_ref(x, b, dim, act, alpha, gain, clamp)


def _bias_act_ref(x, b, dim, act, alpha, gain, clamp):
    """Pure PyTorch reference, differentiable to any order."""
    if b is not None:
        x = x + b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = ACTIVATIONS[act].func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x
