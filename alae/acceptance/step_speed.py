"""Part 4: the training step at the lods that fit the budget, per config: img/s, ms/step and peak
memory in fp32 and bf16, and the CUDA ops' speed-up over the reference ops (fp32).

Each config gets an equal share of the part's time (what one config leaves goes to the next);
within it the lods run from 4×4 up, and a measurement starts only when the one before it, scaled
by 4 (the next lod has 4 times the pixels), still fits; the rest are rows marked `skipped (budget)`. The batch is the config's global
batch at that lod divided by `world_size` (one GPU's share, micro-batched by train.batch_gpu),
timed by `alae.training.timing.time_lod` (median of `steps` after one warm-up step).
"""
from __future__ import annotations

import time

import torch

import alae.distributed as distributed
from alae.acceptance.network_ops import kernels_impl
from alae.acceptance.report import MEASURED, Part
from alae.config import load_config
from alae.training.timing import time_lod, training_state

PRECISIONS = ("fp32", "bf16")
SAFETY = 4.0  # a measurement starts when 4 x the previous one's time still fits (next lod: 4 x the pixels)


def _measure(cfg, ctx, lod: int, batch: int, impl: str, steps: int) -> tuple[float, float | None]:
    """(seconds per step, peak GiB) or (nan, None) when it does not fit in memory."""
    model, ema, optimizers = training_state(cfg, ctx.device)
    try:
        with kernels_impl(impl):
            r = time_lod(model, optimizers, cfg, ctx, lod, batch, warmup=1, steps=steps)
        return r["seconds"], r["peak_bytes"] / 2**30 if ctx.device.type == "cuda" else None
    except torch.cuda.OutOfMemoryError:
        return float("nan"), None
    finally:
        del model, ema, optimizers
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()


def step_speed_part(configs: list[str], device: torch.device, seconds: float, world_size: int = 1,
                    impls: tuple[str, ...] = ("cuda", "ref"), steps: int = 3, number: int = 4,
                    overrides: tuple[str, ...] = ()) -> tuple[Part, dict]:
    """Part 4, and {(config, px): fp32 img/s with impls[0]} for the loader comparison (part 7)."""
    part = Part(number, "training step speed and memory", status=MEASURED, columns=[
        "config", "lod", "px", "batch", "precision", "ops", "img/s", "ms/step", "peak GiB", "cuda speed-up"])
    ctx = distributed.Context(rank=0, local_rank=0, world_size=1, device=device)
    deadline, rates, skipped = time.monotonic() + seconds, {}, 0
    for k, name in enumerate(configs):
        config_deadline = time.monotonic() + (deadline - time.monotonic()) / (len(configs) - k)
        last = 0.0
        for precision in PRECISIONS:
            cfg = load_config(name, [f"train.precision={precision}", *overrides])
            for lod in range(cfg.model.num_lods):
                batch = max(1, cfg.train.batch_per_lod[lod] // world_size)
                px = cfg.model.resolution_at(lod)
                times = {}
                for impl in impls if precision == "fp32" else impls[:1]:
                    if time.monotonic() + SAFETY * last * (steps + 2) > config_deadline:
                        part.rows.append([name, lod, px, batch, precision, impl, "", "", "", "skipped (budget)"])
                        skipped += 1
                        continue
                    started = time.monotonic()
                    step, peak = _measure(cfg, ctx, lod, batch, impl, steps)
                    last = (time.monotonic() - started) / (steps + 2)
                    times[impl] = step
                    fits = step == step  # not nan
                    part.rows.append([name, lod, px, batch, precision, impl, batch / step if fits else "",
                                      1000 * step if fits else "", "" if peak is None else peak,
                                      "" if fits else "does not fit"])
                    if fits and precision == "fp32" and impl == impls[0]:
                        rates[(name, px)] = batch / step
                if len(times) == 2 and all(t == t for t in times.values()):
                    part.rows[-2][-1] = times[impls[1]] / times[impls[0]]
    measured = len(part.rows) - skipped
    part.summary = f"{measured} measurements, {skipped} skipped for the budget ({seconds:.0f} s)"
    if skipped:
        part.notes.append("rows marked 'skipped (budget)' did not fit the time left; rerun with a larger --budget-s")
    return part, rates
