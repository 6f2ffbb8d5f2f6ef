"""Exponential moving average of the networks, used for sampling and evaluation."""
from __future__ import annotations

import torch


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """ema ← beta·ema + (1 − beta)·model for parameters; buffers (e.g. the w average) are copied."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)
