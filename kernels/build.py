"""Choosing between the reference and the fused CUDA implementation of an op.

`impl` is one of:
- ``'ref'``: pure PyTorch reference, any device, exact first and second derivatives;
- ``'cuda'``: the fused CUDA kernels (an error where they cannot be used);
- ``'auto'``: ``'cuda'`` when the input is on a CUDA device and the kernels are available,
  else ``'ref'``.

The environment variable ``ALAE_KERNELS=ref|cuda|auto`` overrides the argument everywhere.
"""
import os

import torch

IMPLS = ("auto", "ref", "cuda")
ENV_VAR = "ALAE_KERNELS"


def resolve_impl(impl, x):
    """Return ``'ref'`` or ``'cuda'`` for an op called with `impl` on tensor `x`."""
    env = os.environ.get(ENV_VAR)
    if env:
        if env not in IMPLS:
            raise ValueError(f"{ENV_VAR}={env!r} is not one of {', '.join(IMPLS)}")
        impl = env
    if impl not in IMPLS:
        raise ValueError(f"impl={impl!r} is not one of {', '.join(IMPLS)}")
    if impl == "ref":
        return "ref"
    if impl == "cuda":
        raise RuntimeError(
            "impl='cuda' requested but the fused CUDA kernels are not available "
            f"(input on {x.device}); use impl='ref' or 'auto'"
        )
    return "ref"
