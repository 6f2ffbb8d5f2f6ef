"""Loss statistics of one tick: kept on the device step by step, read once at the tick's end.

`train_step` returns this rank's statistics as 0-d device tensors. Reading one on the host
would stall a GPU every step, so `TickStats.add` only keeps them. At the end of the tick,
`reduce` stacks them into one [steps, statistics] table on the device, averages it over ranks
with one all-reduce and reads it once; on the host each statistic is then averaged over the
steps that reported it (R1 is reported only on the steps it runs). The same read is the
divergence check: a NaN or infinity on any rank at any step of the tick is in the table, and
the table says which statistic went first, at which step.
"""
from __future__ import annotations

import math

import torch

import alae.distributed as distributed
from alae.errors import UserError


class TrainingDiverged(UserError, RuntimeError):
    """A loss statistic became NaN or infinite; the run stops without writing a checkpoint."""


class TickStats:
    """This rank's per-step statistics of the current tick, on the device, unread."""

    def __init__(self):
        self._steps: list[tuple[int, dict[str, torch.Tensor]]] = []

    def add(self, step: int, stats: dict[str, torch.Tensor]) -> None:
        """Keep optimizer step `step`'s statistics (0-d tensors); never reads them."""
        self._steps.append((step, stats))

    def reduce(self, world_size: int, where: str) -> dict[str, float]:
        """Each statistic's mean over this tick's steps and all ranks (every rank calls this and
        gets the same values), then start the next tick. Raises TrainingDiverged if a statistic
        is not finite, naming the first step and statistics that were not, and `where`
        (e.g. "in tick 12 (kimg 44.000–48.000, lod 2, alpha 0.40)")."""
        steps, self._steps = self._steps, []
        names = sorted({name for _, stats in steps for name in stats})
        if not names:
            return {}
        device = next(value.device for _, stats in steps for value in stats.values())
        missing = torch.zeros((), dtype=torch.float32, device=device)
        table = torch.stack([stats[name].detach().float() if name in stats else missing
                             for _, stats in steps for name in names]).view(len(steps), len(names))
        distributed.all_reduce_mean_([table], world_size)
        rows = table.tolist()  # the tick's one host read
        for (step, stats), row in zip(steps, rows):
            bad = [name for name, value in zip(names, row) if name in stats and not math.isfinite(value)]
            if bad:
                values = ", ".join(f"{name} {value:.4g}" for name, value in zip(names, row) if name in stats)
                raise TrainingDiverged(f"non-finite {', '.join(bad)} at step {step} {where} (step {step}: {values})")
        means = {}
        for j, name in enumerate(names):
            values = [row[j] for (_, stats), row in zip(steps, rows) if name in stats]
            means[name] = sum(values) / len(values)
        return means
