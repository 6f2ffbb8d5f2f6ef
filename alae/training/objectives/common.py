"""What every objective's step shares: this rank's shard of a global batch, gradient accumulation
over its micro-batches, optimizer steps averaged over ranks, trainable flags, fading reals.

A step works on the rows [first, first + size) of the global batch that are this rank's; each
micro-batch's loss is backpropagated scaled by its share of the shard, so the accumulated
gradient is the shard's mean whatever `train.batch_gpu` is, and the explicit all-reduce in
`optimizer_step` makes it the global batch's mean.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

import alae.distributed as distributed
from alae.networks.layers import downsample2x, upsample2x


@dataclass(frozen=True)
class Shard:
    """This rank's rows of a global batch: global indices [first, first + size), in micro-batches
    (start, end) of local indices, each at most `train.batch_gpu` long (0: one micro-batch)."""

    first: int
    size: int
    micro_batches: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, size: int, rank: int, batch_gpu: int) -> "Shard":
        micro = batch_gpu if 0 < batch_gpu < size else size
        return cls(rank * size, size, tuple((s, min(s + micro, size)) for s in range(0, size, micro)))

    @property
    def rows(self) -> slice:
        """This rank's rows of a [global batch, ...] tensor."""
        return slice(self.first, self.first + self.size)

    def global_indices(self, start: int, end: int) -> range:
        """The global indices of local rows [start, end)."""
        return range(self.first + start, self.first + end)


LossStats = dict[str, torch.Tensor]


def accumulate_gradients(shard: Shard, micro_loss: Callable[[int, int], tuple[torch.Tensor, LossStats]],
                         stats: LossStats) -> None:
    """Backpropagate `micro_loss(start, end)` (a batch-mean loss and its 0-d statistics) of every
    micro-batch, each weighted by its share of the shard; add the weighted statistics into `stats`."""
    for s, e in shard.micro_batches:
        loss, new = micro_loss(s, e)
        (loss * (e - s) / shard.size).backward()
        weight = (e - s) / shard.size
        for k, v in new.items():
            stats[k] = stats.get(k, 0.0) + v * weight


def optimizer_step(optimizer: torch.optim.Optimizer, world_size: int) -> None:
    """Average the gradients of the optimizer's parameters over the ranks, then step."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    distributed.average_gradients(params, world_size)
    optimizer.step()


def set_trainable(model: torch.nn.Module, **flags: bool) -> None:
    """set_trainable(model, F=False, G=False, E=True, D=True): which networks collect gradients."""
    for name, flag in flags.items():
        getattr(model, name).requires_grad_(flag)


def fade_reals(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """During a fade-in, blend real images with their downsample-upsample as G blends its output."""
    if alpha >= 1.0:
        return x
    return alpha * x + (1.0 - alpha) * upsample2x(downsample2x(x))
