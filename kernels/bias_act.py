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

The CUDA path (``impl='cuda'``) computes the same in one pass, in float32 for 16-bit inputs.
Its gradient is another fused pass whose own gradient is a third, so R1-style second
derivatives work. For relu and lrelu the backward reads the output y, which the next layer
keeps anyway, rather than x; smooth activations keep x for their second derivative.
"""
import math

import torch
import torch.nn.functional as F


class _Activation:
    def __init__(self, func, def_alpha, def_gain, cuda_index, ref):
        self.func = func
        self.def_alpha = def_alpha
        self.def_gain = def_gain
        self.cuda_index = cuda_index  # BiasActAct in bias_act.h
        self.ref = ref  # what the CUDA backward reads: "x" (and b), "y", or "" (nothing)


ACTIVATIONS = {
    "linear": _Activation(lambda s, alpha: s, 0.0, 1.0, 0, ""),
    "relu": _Activation(lambda s, alpha: F.relu(s), 0.0, math.sqrt(2), 1, "y"),
    "lrelu": _Activation(lambda s, alpha: F.leaky_relu(s, alpha), 0.2, math.sqrt(2), 2, "y"),
    "tanh": _Activation(lambda s, alpha: torch.tanh(s), 0.0, 1.0, 3, "x"),
    "sigmoid": _Activation(lambda s, alpha: torch.sigmoid(s), 0.0, 1.0, 4, "x"),
    "elu": _Activation(lambda s, alpha: F.elu(s), 0.0, 1.0, 5, "x"),
    "selu": _Activation(lambda s, alpha: F.selu(s), 0.0, 1.0, 6, "x"),
    "softplus": _Activation(lambda s, alpha: F.softplus(s), 0.0, 1.0, 7, "x"),
    "swish": _Activation(lambda s, alpha: torch.sigmoid(s) * s, 0.0, math.sqrt(2), 8, "x"),
}


def check_args(x, b, dim, act, clamp):
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


def via(path, x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None):
    """`alae.kernels.bias_act` through `path` ('ref' or 'cuda'), whatever the device and ALAE_KERNELS say.

    The self-test's entry (selftest.py): on CPU tensors 'cuda' runs the CUDA path's Python side
    on whatever `_cuda_op` returns (in the tests, the host-compiled stand-in).
    """
    check_args(x, b, dim, act, clamp)
    return run(path, x, b, dim, act, alpha, gain, clamp)


def run(path, x, b, dim, act, alpha, gain, clamp):
    spec = ACTIVATIONS[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    if path == "cuda":
        cfg = _CudaConfig(dim, act, alpha, gain, -1.0 if clamp is None else float(clamp))
        return _BiasActCuda.apply(x, None if b is None else b.to(x.dtype), cfg)
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


def _cuda_op():
    """The compiled kernel, torch.ops.alae_kernels.bias_act (see bias_act.cpp)."""
    return torch.ops.alae_kernels.bias_act


class _CudaConfig:
    def __init__(self, dim, act, alpha, gain, clamp):
        spec = ACTIVATIONS[act]
        self.dim, self.act, self.alpha, self.gain, self.clamp = dim, spec.cuda_index, alpha, gain, clamp
        self.ref = spec.ref
        # Without a reference the gradient is dy * gain; a clamp needs y to know where it cut.
        if self.ref == "" and clamp >= 0:
            self.ref = "y"

    def kernel(self, mode, g, b, xref, yref, dy):
        """One pass of the CUDA kernel; modes 0/1/2 = forward / gradient / second derivative."""
        return _cuda_op()(g, b, xref, yref, dy, mode, self.dim, self.act, self.alpha, self.gain, self.clamp)

    def reduce_bias(self, t):
        """Sum over every dimension but `dim`: a gradient with respect to the bias."""
        return t.sum(dim=[i for i in range(t.ndim) if i != self.dim])


class _BiasActCuda(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, cfg):
        y = cfg.kernel(0, x, b, None, None, None)
        ctx.cfg = cfg
        ctx.save_for_backward(x if cfg.ref == "x" else None, b if cfg.ref == "x" else None,
                              y if cfg.ref == "y" else None)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, b, y = ctx.saved_tensors
        cfg = ctx.cfg
        dx = db = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            dx = _BiasActCudaGrad.apply(dy, x, b, y, cfg)
        if ctx.needs_input_grad[1]:
            db = cfg.reduce_bias(dx)
        return dx, db, None


class _BiasActCudaGrad(torch.autograd.Function):
    """dx = dy * d(bias_act)/dx; linear in dy, and differentiable in x for smooth activations."""

    @staticmethod
    def forward(ctx, dy, x, b, y, cfg):
        ctx.cfg = cfg
        ctx.save_for_backward(dy, x, b, y)
        return cfg.kernel(1, dy, b, x, y, None)

    @staticmethod
    def backward(ctx, d_dx):
        dy, x, b, y = ctx.saved_tensors
        cfg = ctx.cfg
        d_dy = d_x = d_b = None
        if ctx.needs_input_grad[0]:
            d_dy = _BiasActCudaGrad.apply(d_dx, x, b, y, cfg)
        if cfg.ref == "x" and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            d_x = cfg.kernel(2, d_dx, b, x, y, dy)
            if ctx.needs_input_grad[2]:
                d_b = cfg.reduce_bias(d_x)
        return d_dy, d_x, d_b, None, None
