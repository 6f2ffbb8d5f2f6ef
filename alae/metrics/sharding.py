"""Splitting a metric's images over ranks and putting the results back in global order.

Image i of a metric (a generated image, a real image, a PPL pair) is made from draws seeded by
its global index i only, and rank r of W takes the contiguous block `shard(count, r, W)`; rows
gathered from the ranks are concatenated in rank order, which is the global order. So W ranks
compute what one process computes, row for row (up to the float rounding of batched
convolutions), and order-dependent steps such as KID's subset draws see the same rows.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from alae.distributed import Context


def shard(count: int, rank: int, world_size: int) -> range:
    """Rank `rank`'s block of range(count): sizes differ by at most one, earlier ranks larger."""
    base, extra = divmod(count, world_size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (rank < extra))


def gather_rows(local: torch.Tensor, count: int, ctx: Context) -> torch.Tensor | None:
    """Rows [n_r, ...] of every rank's shard of range(count) → all [count, ...] on rank 0's CPU
    in global order; None on the other ranks. `local` lives on `ctx.device`."""
    if ctx.world_size == 1:
        return local.cpu()
    sizes = [len(shard(count, r, ctx.world_size)) for r in range(ctx.world_size)]
    padded = local.new_zeros((max(sizes), *local.shape[1:]))
    padded[: len(local)] = local
    parts = [torch.empty_like(padded) for _ in sizes] if ctx.is_main else None
    dist.gather(padded, parts, dst=0)
    if not ctx.is_main:
        return None
    return torch.cat([part[:size] for part, size in zip(parts, sizes)]).cpu()


def broadcast_values(values: list[float], ctx: Context) -> list[float]:
    """Rank 0's float values on every rank (float64; NaN stands for "none")."""
    if ctx.world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.broadcast(tensor, src=0)
    return tensor.tolist()


def sum_over_ranks(values: list[float], ctx: Context) -> list[float]:
    """Element-wise sums of every rank's values (float64), on every rank."""
    if ctx.world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def single_process(device: torch.device) -> Context:
    """The context of a plain, non-distributed call on `device`."""
    return Context(rank=0, local_rank=0, world_size=1, device=torch.device(device))
