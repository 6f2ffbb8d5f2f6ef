"""Claiming a run folder for one `alae-train`: what may go into it, and the lock that keeps
a second process out.

A run folder (`--out`) takes a run when it does not exist, is empty, or holds a run (one of
`RUN_ENTRIES`). It is refused when it is a file or under one, when it holds other things only
(a folder of images), and, without `--resume`, when it holds a checkpoint: a new run would
start over on top of it.

The lock is an exclusive `flock` on `RUN/run.lock`, held while the process lives: a second
`alae-train` into the same folder (a new run or a `--resume auto` relaunch) is refused at
once, naming the process (pid, host, start time) written into the file. The kernel drops
the lock when its process dies, `kill -9` included, so a killed run never blocks the next
one; the file itself stays. Processes forked while the lock is held (data loader workers)
close their copy of it, so an orphaned worker cannot keep a dead run's folder locked (and
exec'd children never get it: the descriptor is close-on-exec). Under
torchrun only rank 0 claims the folder (`alae.distributed.on_main` hands its refusal to all
ranks).
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from pathlib import Path

from alae.errors import UserError
from alae.files import TEMPORARY_SUFFIX, WriteError, create_folder, format_bytes

LOCK_FILE = "run.lock"
# Everything a run writes at the top of its folder (alae-metrics adds metrics.jsonl).
RUN_ENTRIES = frozenset({"config.yaml", "checkpoints", "log.txt", "stats.jsonl", "metrics.jsonl", "samples", "tb",
                         LOCK_FILE})
# Where a run writes through alae.files.atomic_write, so where a killed write leaves its temporary.
WRITE_FOLDERS = (".", "checkpoints", "samples")


class RunFolderError(UserError, RuntimeError):
    """--out cannot take this run: a file, a folder of other things, a run without --resume, or
    a folder another process is training in."""


def check_run_folder(run_dir: Path, resuming: bool) -> None:
    """Refuse a `run_dir` that cannot take a run (module docstring); changes nothing on disk."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"--out {run_dir} is a file, not a folder")
    blocker = next((p for p in run_dir.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise RunFolderError(f"--out {run_dir} is under {blocker}, which is a file, not a folder")
    if not run_dir.is_dir():
        return
    entries = sorted(p.name for p in run_dir.iterdir())
    if entries and not RUN_ENTRIES.intersection(entries):
        raise RunFolderError(f"--out {run_dir} holds {len(entries)} entries and no run (e.g. {entries[0]}); "
                             f"choose a new or empty folder")
    checkpoints = run_dir / "checkpoints"
    if not resuming and checkpoints.is_dir() and any(checkpoints.glob("*.pt")):
        raise RunFolderError(f"--out {run_dir} holds a run with checkpoints; continue it with "
                             f"`alae-train --out {run_dir} --resume auto`, or choose a new --out")


class RunLock:
    """The held lock of one run folder; `release()` (or the process's end) lets the next run in."""

    _held_fds: set[int] = set()  # closed in forked children (os.register_at_fork below)

    def __init__(self, path: Path, fd: int | None, unlocked_because: str = ""):
        self.path, self.fd = path, fd
        self.unlocked_because = unlocked_because  # why a file system without locks left it unlocked

    def release(self) -> None:
        if self.fd is not None:
            RunLock._held_fds.discard(self.fd)
            os.close(self.fd)
            self.fd = None


def _close_in_child() -> None:
    for fd in RunLock._held_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    RunLock._held_fds = set()


os.register_at_fork(after_in_child=_close_in_child)


def lock_run_folder(run_dir: Path) -> RunLock:
    """Create `run_dir` if needed and take its lock; RunFolderError naming the holder when another
    process has it. A file system without locks (some network mounts) runs unlocked."""
    run_dir = create_folder(Path(run_dir), "--out")
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise WriteError(f"cannot write to --out {run_dir}: {e.strerror.lower()}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):  # ENOLCK and kin: no locking here
            os.close(fd)
            return RunLock(path, None, f"{path}: {e.strerror}; this file system has no locks, so a second "
                                       f"alae-train into {run_dir} would not be refused")
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "holder unknown"
        os.close(fd)
        raise RunFolderError(f"--out {run_dir} is in use by another alae-train ({holder}); wait for it to end or "
                             f"stop it, or choose another --out") from None
    record = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, record, 0)
    RunLock._held_fds.add(fd)
    return RunLock(path, fd)


def remove_stale_temporaries(run_dir: Path) -> list[str]:
    """Delete the `*.tmp` files killed writes left in the run folder (call while holding its
    lock: no other process writes there); one note per file removed."""
    notes = []
    for folder in WRITE_FOLDERS:
        for tmp in sorted((Path(run_dir) / folder).glob(f"*{TEMPORARY_SUFFIX}")):
            size = tmp.stat().st_size
            tmp.unlink()
            notes.append(f"removed {tmp} ({format_bytes(size)}), left by an interrupted write")
    return notes
