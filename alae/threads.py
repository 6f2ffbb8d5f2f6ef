"""How many CPU threads torch computes with in one process: the cores it is given, not all the machine has.

torch starts one intra-op thread per core of the machine. Two processes on the same cores then
run twice as many threads as there are cores, and OpenMP threads that wait on each other while
descheduled make both several times slower than one alone (docs/PERFORMANCE.md, "Two runs on
one machine").
`resolve_threads(0)` ("auto") is:

1. `OMP_NUM_THREADS`, when it is set to a positive whole number (the user's or the scheduler's word);
2. else the cores this process may run on (`os.sched_getaffinity`: a `taskset`, cgroup cpuset
   or Slurm allocation counts), divided among the processes that share them: the ranks
   `torchrun` starts on this node (`LOCAL_WORLD_SIZE`) or, when more, the alae processes of this
   user computing on overlapping cores with automatic threads (each registers itself in
   `share_folder()`, a file named by its pid holding its cores, removed when it ends; a file
   whose process is gone is ignored and removed). At least 1.

`apply_threads` sets the count (`torch.set_num_threads`) before any work and registers the
process; the training loop calls `refresh_threads` at every tick's end, so two runs started on
one machine each drop to their share when the second starts, and the one left takes the cores
back when the other ends. A count asked for (`train.threads`, `--threads`, `OMP_NUM_THREADS`) is
taken as it is and never changed. Inter-op threads are left alone: nothing here runs inter-op
parallel work (they serve `torch.jit.fork`).
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

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


def auto_threads(environ: Mapping[str, str] = os.environ, cores: int | None = None,
                 sharers: int = 1) -> tuple[int, str]:
    """(threads, why) by the module docstring's rule; `cores` defaults to `available_cores()`,
    `sharers` is the number of registered processes on those cores (this one included)."""
    omp = positive_int(environ.get("OMP_NUM_THREADS"))
    if omp is not None:
        return omp, "OMP_NUM_THREADS"
    cores = available_cores() if cores is None else cores
    local_ranks = positive_int(environ.get("LOCAL_WORLD_SIZE")) or 1
    if sharers > local_ranks:
        return max(1, cores // sharers), f"{cores} cores / {sharers} alae processes"
    if local_ranks > 1:
        return max(1, cores // local_ranks), f"{cores} cores / {local_ranks} local ranks"
    return max(1, cores), f"{cores} cores"


def resolve_threads(requested: int, environ: Mapping[str, str] = os.environ,
                    cores: int | None = None, sharers: int = 1) -> tuple[int, str]:
    """(threads, why): `requested` when positive, the automatic rule for 0; ThreadsError below 0."""
    if requested < 0:
        raise ThreadsError(f"a thread count must be >= 0 (0 = automatic), got {requested}")
    if requested > 0:
        return requested, "asked for"
    return auto_threads(environ, cores, sharers)


def is_automatic(requested: int, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the count follows the processes sharing the cores (neither asked for nor OMP_NUM_THREADS)."""
    return requested == 0 and positive_int(environ.get("OMP_NUM_THREADS")) is None


def share_folder() -> Path:
    """Where the processes with automatic threads register (`ALAE_CPU_SHARE_DIR`, else one folder
    per user in the temporary directory)."""
    return Path(os.environ.get("ALAE_CPU_SHARE_DIR") or Path(tempfile.gettempdir()) / f"alae-cpu-share-{os.getuid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def register(folder: Path | None = None, pid: int | None = None) -> Path | None:
    """Record this process (or `pid`) and its cores in the share folder; None where it cannot be written."""
    folder = share_folder() if folder is None else folder
    pid = os.getpid() if pid is None else pid
    entry = folder / str(pid)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{pid}.tmp"
        temporary.write_text(json.dumps(sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []))
        os.replace(temporary, entry)
    except OSError:
        return None
    return entry


def unregister(entry: Path | None) -> None:
    if entry is not None:
        entry.unlink(missing_ok=True)


def sharers(folder: Path | None = None) -> int:
    """The live registered processes whose cores overlap this one's (this one included, at least 1);
    entries of processes that are gone are removed."""
    folder = share_folder() if folder is None else folder
    mine = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
    count = 0
    try:
        entries = [e for e in folder.iterdir() if e.name.isdigit()]
    except OSError:
        return 1
    for entry in entries:
        pid = int(entry.name)
        if pid != os.getpid() and not _alive(pid):
            entry.unlink(missing_ok=True)
            continue
        try:
            cores = set(json.loads(entry.read_text()))
        except (OSError, ValueError):
            continue  # being written or removed
        if pid == os.getpid() or not cores or not mine or cores & mine:
            count += 1
    return max(1, count)


_registered: dict[str, Path | None] = {}


def apply_threads(requested: int) -> tuple[int, str]:
    """Set torch's intra-op thread count from `requested` (0: automatic, this process registered
    among the sharers of its cores until it exits); returns (threads, why)."""
    if is_automatic(requested) and "entry" not in _registered:
        _registered["entry"] = register()
    threads, why = resolve_threads(requested, sharers=sharers() if is_automatic(requested) else 1)
    torch.set_num_threads(threads)
    return threads, why


def release_threads() -> None:
    """This process no longer computes: its registration goes (the others take its cores at their next refresh)."""
    unregister(_registered.pop("entry", None))


atexit.register(release_threads)  # once per process: a registration never outlives it


def refresh_threads(requested: int) -> tuple[int, str] | None:
    """With automatic threads, the count again for the processes sharing the cores now; set and
    returned when it changed, else None (a count asked for never changes)."""
    if not is_automatic(requested):
        return None
    threads, why = resolve_threads(requested, sharers=sharers())
    if threads == torch.get_num_threads():
        return None
    torch.set_num_threads(threads)
    return threads, why


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """`--threads N` for a tool that computes (0, the default: automatic)."""
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads torch computes with (default 0: OMP_NUM_THREADS if set, else the cores "
                             "this process may use, divided among the alae processes computing on them)")
