"""How many CPU threads torch computes with in one process: the cores it is given, not all the machine has.

torch starts one intra-op thread per core of the machine. Two processes on the same cores then
run twice as many threads as there are cores, and OpenMP threads that wait on each other while
descheduled make both several times slower than one alone (docs/PERFORMANCE.md, "Threads").
`resolve_threads(0)` ("auto") is:

1. `OMP_NUM_THREADS`, when it is set to a positive whole number (the user's or the scheduler's word);
2. else the cores this process may run on (`os.sched_getaffinity`: a `taskset`, cgroup cpuset
   or Slurm allocation counts), divided among the ranks `torchrun` starts on this node
   (`LOCAL_WORLD_SIZE`), at least 1.

A process cannot see another independent run on the same cores; give each one its share by hand
(`train.threads=1`, `--threads 1`, or `OMP_NUM_THREADS=1`). `apply_threads` sets the count
(`torch.set_num_threads`) before any work. Inter-op threads are left alone: nothing here runs
inter-op parallel work (they serve `torch.jit.fork`).
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

import torch

from alae.errors import UserError


class ThreadsError(UserError, ValueError):
    """A thread count that cannot be used (negative)."""


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; the machine's count where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def positive_int(text: str | None) -> int | None:
    """`text` as a positive whole number, else None (unset, empty, malformed, zero or negative)."""
    try:
        value = int(text) if text is not None else 0
    except ValueError:
        return None
    return value if value > 0 else None


def auto_threads(environ: Mapping[str, str] = os.environ, cores: int | None = None) -> tuple[int, str]:
    """(threads, why) by the module docstring's rule; `cores` defaults to `available_cores()`."""
    omp = positive_int(environ.get("OMP_NUM_THREADS"))
    if omp is not None:
        return omp, "OMP_NUM_THREADS"
    cores = available_cores() if cores is None else cores
    local_ranks = positive_int(environ.get("LOCAL_WORLD_SIZE")) or 1
    if local_ranks > 1:
        return max(1, cores // local_ranks), f"{cores} cores / {local_ranks} local ranks"
    return max(1, cores), f"{cores} cores"


def resolve_threads(requested: int, environ: Mapping[str, str] = os.environ,
                    cores: int | None = None) -> tuple[int, str]:
    """(threads, why): `requested` when positive, the automatic rule for 0; ThreadsError below 0."""
    if requested < 0:
        raise ThreadsError(f"a thread count must be >= 0 (0 = automatic), got {requested}")
    if requested > 0:
        return requested, "asked for"
    return auto_threads(environ, cores)


def apply_threads(requested: int) -> tuple[int, str]:
    """Set torch's intra-op thread count from `requested` (0: automatic); returns (threads, why)."""
    threads, why = resolve_threads(requested)
    torch.set_num_threads(threads)
    return threads, why


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """`--threads N` for a tool that computes (0, the default: automatic)."""
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads torch computes with (default 0: OMP_NUM_THREADS if set, else the cores "
                             "this process may use; give each of several processes on the same cores its share)")
