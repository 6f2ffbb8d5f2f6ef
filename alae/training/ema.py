"""Exponential moving average of the networks, used for sampling and evaluation."""
from __future__ import annotations

import torch


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """ema ← beta·ema + (1 − beta)·model for parameters; buffers (e.g. the w average) are copied.

    One multi-tensor lerp over all parameters (on a GPU one fused kernel, on the CPU the same
    per-tensor `lerp_`), the same arithmetic as a loop of `lerp_` per parameter.
    """
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - beta)
    torch._foreach_copy_(list(ema.buffers()), list(model.buffers()))
