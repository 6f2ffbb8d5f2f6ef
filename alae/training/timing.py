"""Timing one training step: the objective's `train_step` on random images at one lod, as a
run starts its networks (used by benchmark_training, alae-doctor's memory lines and its
acceptance run).
"""
from __future__ import annotations

import statistics
import time

import torch

from alae.training.data import NO_LABEL, Batch
from alae.training.loop import new_networks
from alae.training.objectives import objective_named
from alae.training.schedule import Phase


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_state(cfg, device: torch.device):
    """(model, EMA copy, optimizers) as a run starts them: the EMA copy stays resident, as in
    training, so the memory figure counts it."""
    return new_networks(cfg, device, objective_named(cfg.train.objective))


def time_lod(model, optimizers, cfg, ctx, lod: int, batch: int, warmup: int, steps: int) -> dict:
    """Median seconds per step and peak CUDA memory (bytes, 0 on CPU) for one lod at alpha 1."""
    phase = Phase(lod=lod, alpha=1.0, batch=batch, lr=cfg.train.lr_per_lod[lod], resolution=cfg.model.resolution_at(lod))
    g = torch.Generator().manual_seed(lod)
    reals = torch.randint(0, 256, (batch, cfg.model.image_channels, phase.resolution, phase.resolution),
                          generator=g, dtype=torch.uint8)
    data = Batch(reals, torch.full((batch,), NO_LABEL))
    train_step = objective_named(cfg.train.objective).train_step
    for opt in optimizers.values():
        opt.state.clear()
    if ctx.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(ctx.device)
    times = []
    for step in range(warmup + steps):
        synchronize(ctx.device)
        start = time.perf_counter()
        train_step(model, optimizers, data, phase, cfg, ctx, step)
        synchronize(ctx.device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(ctx.device) if ctx.device.type == "cuda" else 0
    return {"seconds": statistics.median(times), "peak_bytes": peak}
