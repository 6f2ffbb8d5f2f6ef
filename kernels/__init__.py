"""Fused ops for StyleGAN-style networks: `upfirdn2d` (resampling/FIR filtering) and `bias_act`.

Each op has a pure PyTorch reference (``impl='ref'``) and a fused CUDA implementation
(``impl='cuda'``); ``impl='auto'`` picks CUDA for CUDA tensors when the kernels build and the
op passes its self-test on that GPU model (selftest.py), and the environment variable
``ALAE_KERNELS=ref|cuda|auto`` overrides the choice everywhere.
Semantics match the StyleGAN2-ADA ops of the same names. `resolve_impl(impl, x, op=...)` says
which path an op would take for a tensor (the networks ask it where they choose between a
kernel and a plain torch op).
"""
from .extension import resolve_impl
from .ops import bias_act, downsample2d, filter2d, upfirdn2d, upsample2d
from .upfirdn2d import setup_filter

__all__ = ["bias_act", "downsample2d", "filter2d", "resolve_impl", "setup_filter", "upfirdn2d", "upsample2d"]
