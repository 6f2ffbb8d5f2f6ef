"""Process group set-up from torchrun's environment, and the collectives training needs.

`torchrun --nproc_per_node=N -m alae.train ...` sets RANK, LOCAL_RANK and WORLD_SIZE; a plain
`alae-train` has none of them and runs as world size 1 through the same code. One process
per GPU on `cuda:LOCAL_RANK` with NCCL, or gloo on CPU.

Gradients are averaged with one explicit flattened all-reduce per optimizer step (no DDP
wrapper): the three ALAE steps freeze different networks and R1 differentiates twice, which
is where DDP's unused-parameter and double-backward traps lie.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Callable, TypeVar

import torch
import torch.distributed as dist

from alae.cli import resolve_device
from alae.errors import USER_ERRORS

T = TypeVar("T")

# A collective that waits longer than this means a peer is gone: fail instead of hanging.
COLLECTIVE_TIMEOUT = datetime.timedelta(seconds=int(os.environ.get("ALAE_DIST_TIMEOUT_S", "600")))


@dataclass(frozen=True)
class Context:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: str = "auto") -> Context:
    """Read torchrun's variables, pick the device and join the process group when world size > 1.
    `--device cuda` without a GPU is a one-line ToolError (`alae.cli.resolve_device`)."""
    rank = int(os.environ.get("RANK", 0))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    use_cuda = resolve_device(device).type == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            timeout=COLLECTIVE_TIMEOUT,
            device_id=dev if use_cuda else None,
            **restart_safe_store(rank, world_size),
        )
    return Context(rank=rank, local_rank=local_rank, world_size=world_size, device=dev)


def restart_safe_store(rank: int, world_size: int) -> dict:
    """init_process_group arguments that keep a restarted torchrun attempt apart from the dead one.

    torchrun (`--max-restarts`) shares its rendezvous TCP store with the workers and keeps it
    across restarts; joining it without a prefix lets a restarted group read the dead workers'
    addresses and fail or hang while connecting (pytorch/pytorch#135712). Each attempt gets its
    own key prefix. Outside torchrun's agent store, the default env:// rendezvous is used.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return {}
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size,
                          is_master=False, timeout=COLLECTIVE_TIMEOUT)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return {"store": dist.PrefixStore(f"alae/attempt_{attempt}/", store), "rank": rank, "world_size": world_size}


def all_reduce_mean_(tensors: list[torch.Tensor], world_size: int) -> None:
    """Average `tensors` in place over all ranks with a single flattened all-reduce."""
    if world_size == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


def average_gradients(params: list[torch.nn.Parameter], world_size: int) -> None:
    """All-reduce-mean the `.grad` of those `params` that have one.

    Every rank runs the same graph, so the set of parameters with a gradient is the same on all
    ranks; parameters outside the step's graph keep `grad=None` and Adam leaves them (and their
    moments) alone.
    """
    if world_size == 1:
        return
    all_reduce_mean_([p.grad for p in params if p.grad is not None], world_size)


def broadcast_module_(module: torch.nn.Module, world_size: int) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    if world_size == 1:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def on_main(fn: Callable[[], T], ctx: Context) -> T:
    """`fn()` on rank 0 alone; its result on every rank, or the error it raised raised on every
    rank (one broadcast), so a refusal on rank 0 stops all ranks with the same one-line message
    instead of leaving them waiting at the next collective."""
    result, error = None, None
    if ctx.is_main:
        try:
            result = fn()
        except Exception as e:
            if ctx.world_size == 1:
                raise
            error = e
    if ctx.world_size > 1:
        shared = [result, error if error is None or isinstance(error, USER_ERRORS)
                  else RuntimeError(f"rank 0 failed: {type(error).__name__}: {error}")]
        dist.broadcast_object_list(shared, src=0)
        if error is not None:
            raise error
        result, error = shared
        if error is not None:
            raise error
    return result


def barrier(world_size: int) -> None:
    if world_size > 1:
        dist.barrier()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
