"""Metrics computed while training: the one seam between the training loop and `alae.metrics`.

The loop calls `check_training_metrics(cfg.log.metrics)` at start-up, so an unknown name or a
missing weight file fails before anything is written, and `snapshot_metrics(...)` on every
rank at each metric tick (the metrics share their work among the ranks); rank 0 records the
results (TensorBoard `Metrics/NAME`, one log line, `metrics.jsonl`). Any metric of the
registry works (`mse_rec`, `fid10k`, `kid10k`, `fid_rec10k`, `lpips_rec1k`, `ppl_wend10k`,
`knn1`, `elbo`, `fd_digits10k`, ...), run on the EMA networks at the tick's lod and alpha;
reconstruction, code, likelihood and digit metrics use the run's held-out images. Weight files come from $ALAE_INCEPTION / $ALAE_LPIPS or the cache
(`alae.metrics.weight_files`).
"""
from __future__ import annotations

import torch

from alae.config import Config, ConfigError
from alae.datasets import to_model_range
from alae.distributed import Context
from alae.metrics import MetricError, MetricResult, compute_metrics, parse_metric_names
from alae.metrics.evaluation import OpenDatabase
from alae.metrics.reconstruction import reconstruct_at_full_resolution
from alae.metrics.weight_files import INCEPTION, LPIPS
from alae.model import LatentAutoencoder
from alae.training.schedule import Phase


@torch.no_grad()
def reconstruction_mse(ema: LatentAutoencoder, held_out_u8: torch.Tensor, phase: Phase, device, seed: int,
                       labels: torch.Tensor | None = None) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Held-out reconstruction error of the EMA networks at the model's full resolution (the
    `mse_rec` definition), with the images the reconstruction grids show; `labels` (int [N]) for
    a model whose decoder takes them. Returns (MSE in the pixel range [−1, 1], originals,
    reconstructions), both [N, C, R_full, R_full]."""
    originals = to_model_range(held_out_u8.to(device))
    rec = reconstruct_at_full_resolution(ema, originals, phase.lod, phase.alpha, range(len(originals)), seed, labels)
    return (rec - originals).square().mean().item(), originals, rec


def check_training_metrics(names: list[str]) -> None:
    """ConfigError (log.metrics: ...) for an unknown metric name or a weight file it needs that
    is not on this machine."""
    if not names:
        return
    try:
        metrics = parse_metric_names(names)
    except MetricError as e:
        raise ConfigError(f"log.metrics: {e}") from None
    for kind, weights in (("inception", INCEPTION), ("lpips", LPIPS)):
        if any(kind in m.family.weights for m in metrics) and weights.find() is None:
            raise ConfigError(f"log.metrics: {weights.missing_message()}")


def snapshot_metrics(names: list[str], ema: LatentAutoencoder, phase: Phase, data: OpenDatabase, cfg: Config,
                     ctx: Context, kimg: float) -> list[MetricResult]:
    """The metrics `names` of the EMA networks at `phase` on the run's data (`RunData`, already
    open); call on every rank (the same results on every rank)."""
    return compute_metrics(names, ema, data, lod=phase.lod, alpha=phase.alpha, ctx=ctx, holdout=cfg.data.holdout,
                           seed=cfg.train.seed, download=False, progress=False, kimg=kimg)
