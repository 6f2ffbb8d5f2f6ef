"""Fused ops for StyleGAN-style networks: `upfirdn2d` (resampling/FIR filtering) and `bias_act`.

Each op has a pure PyTorch reference (``impl='ref'``) and a fused CUDA implementation
(``impl='cuda'``); ``impl='auto'`` picks CUDA for CUDA tensors when the kernels build and the
op passes its self-test on that GPU model (selftest.py), and the environment variable
``ALAE_KERNELS=ref|cuda|auto`` overrides the choice everywhere.
Semantics match the StyleGAN2-ADA ops of the same names.
"""
from .bias_act import bias_act
from .upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

__all__ = ["bias_act", "downsample2d", "filter2d", "setup_filter", "upfirdn2d", "upsample2d"]
