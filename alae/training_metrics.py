"""Metrics computed while training: the one seam between the training loop and the metrics.

The loop calls `check_training_metrics(cfg.log.metrics)` at start-up, so an unknown name fails
before anything is written, and `snapshot_metrics(...)` on every rank at each metric tick (a
metric may share its work among the ranks); rank 0 records the results (TensorBoard
`Metrics/NAME`, one log line, `metrics.jsonl`). The metrics known here:

- `mse_rec`: the held-out reconstruction MSE of the EMA networks (`reconstruction_mse`).
"""
from __future__ import annotations

import time
from typing import NamedTuple

import torch

from alae import randomness
from alae.config import ConfigError
from alae.datasets import to_model_range
from alae.distributed import Context
from alae.grids import to_full_resolution
from alae.layers import downsample2x
from alae.model import ALAE
from alae.schedule import Phase


class MetricResult(NamedTuple):
    name: str
    value: float
    seconds: float  # wall time of its computation


@torch.no_grad()
def reconstruction_mse(ema: ALAE, held_out_u8: torch.Tensor, phase: Phase, device,
                       seed: int) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Held-out reconstruction error of the EMA networks at the model's full resolution.

    The images are encoded at the phase's resolution (box-filter downsampled, as the database
    stores them) and the reconstructions nearest-upsampled back, so the number measures what
    the reconstruction grids show and compares across lods. Returns (MSE in the pixel range
    [−1, 1], originals, reconstructions), both [N, C, R_full, R_full].
    """
    originals = to_model_range(held_out_u8.to(device))
    x = originals
    while x.shape[-1] > phase.resolution:
        x = downsample2x(x)
    noise = randomness.per_sample_noise(ema.G.noise_shapes(phase.lod), range(len(x)), device, seed, "eval")
    rec = to_full_resolution(ema.reconstruct(x, phase.lod, phase.alpha, noise=noise), originals.shape[-1])
    return (rec - originals).square().mean().item(), originals, rec


def mse_rec(ema: ALAE, phase: Phase, held_out_u8: torch.Tensor, ctx: Context, seed: int) -> float:
    return reconstruction_mse(ema, held_out_u8, phase, ctx.device, seed)[0]


TRAINING_METRICS = {"mse_rec": mse_rec}


def check_training_metrics(names: list[str]) -> None:
    """ConfigError naming the first of `names` (log.metrics) that no metric here computes."""
    for name in names:
        if name not in TRAINING_METRICS:
            raise ConfigError(f"log.metrics: unknown metric {name!r}; metrics computed while training: "
                              f"{', '.join(sorted(TRAINING_METRICS))}")


def snapshot_metrics(names: list[str], ema: ALAE, phase: Phase, held_out_u8: torch.Tensor, ctx: Context,
                     seed: int) -> list[MetricResult]:
    """Compute the metrics `names` of the EMA networks at `phase`; called on every rank, the same
    results on every rank. held_out_u8: the run's held-out images, uint8 [N, C, R, R]."""
    results = []
    for name in names:
        start = time.perf_counter()
        value = TRAINING_METRICS[name](ema, phase, held_out_u8, ctx, seed)
        results.append(MetricResult(name, value, time.perf_counter() - start))
    return results
