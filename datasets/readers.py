"""One read-only LMDB environment per database per process, shared by every reader in it.

py-lmdb refuses to open the same environment twice in a process, and an environment must not be
used across fork. So readers ask `shared_reader` on each access: after a fork (the process id
changed) the inherited environments are closed and fresh ones opened in the new process.
Environments are read-only with lock=False, readahead=False.
"""
import os
import threading
from pathlib import Path

import lmdb

from .lmdb_header import check_not_truncated

_readers: dict[str, lmdb.Environment] = {}
_owner_pid = os.getpid()
_opening = threading.Lock()


def reader_key(path) -> str:
    """The registry key of a database path (its resolved absolute path)."""
    return str(Path(path).resolve())


def shared_reader(key: str) -> lmdb.Environment:
    """This process's read-only environment for the database at `key` (see `reader_key`), opened on first use.

    Raises DatasetError when its data.mdb is shorter than LMDB's header says (`lmdb_header`),
    lmdb.Error when the directory cannot be opened as LMDB.
    """
    _close_inherited_after_fork()
    env = _readers.get(key)
    if env is None:
        with _opening:
            env = _readers.get(key)
            if env is None:
                check_not_truncated(Path(key))  # a short file would be a SIGBUS at its first read
                env = lmdb.open(key, readonly=True, lock=False, readahead=False, meminit=False, max_spare_txns=2)
                _readers[key] = env
    return env


def release_reader(path) -> None:
    """Close this process's reader of `path`, if any (before writing it, deleting it, or on a failed open)."""
    _close_inherited_after_fork()
    with _opening:
        env = _readers.pop(reader_key(path), None)
        if env is not None:
            env.close()


def _close_inherited_after_fork() -> None:
    """In a forked child, close the environments inherited from the parent (unmapping only this process's copy)."""
    global _owner_pid
    if _owner_pid != os.getpid():
        with _opening:
            for inherited in _readers.values():
                inherited.close()
            _readers.clear()
            _owner_pid = os.getpid()
