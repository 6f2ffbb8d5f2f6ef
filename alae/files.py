"""Safe file writes: every file alae writes appears whole or not at all.

A write goes to `NAME.tmp` beside the target, is flushed and fsynced, then renamed over the
target, so a crash or Ctrl-C mid-write leaves the previous file (or none) in place. A write
that fails removes its temporary; `atomic_write` is the one place that turns a full disk, a
quota or a file-size limit (ENOSPC, EDQUOT, EFBIG) or a folder that cannot be written (EROFS,
EACCES) into a one-line `WriteError` naming the path and the space it needs, and a Ctrl-C inside
a writer (which torch.save reports as "unexpected pos") back into KeyboardInterrupt.

Append-only JSON Lines files (stats.jsonl, metrics.jsonl) get one object per line, one write
each: each row is written with a single `write` to a file opened for appending and synced
before the call returns, so a crash loses at most the row being written, never an earlier one.
A reader skips a last line that does not parse; the next append after such a torn line starts
on a fresh line. Rows are never rewritten.
"""
from __future__ import annotations

import errno
import io
import json
import os
import resource
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import torch
from PIL import Image

from alae.errors import UserError

TEMPORARY_SUFFIX = ".tmp"
# What the system says when a write cannot get its space, and in what words the user is told.
NO_SPACE = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
            errno.EFBIG: "file too large for the file-size limit (ulimit -f)"}
NOT_WRITABLE = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted"}


class WriteError(UserError, OSError):
    """A file or folder could not be written: a full disk, a quota or file-size limit, a
    read-only or forbidden folder, a path under a file. The message is one line."""


def atomic_write(path: Path, write: Callable[[BinaryIO], None], size_hint: int | None = None) -> Path:
    """Call `write(file)` on a temporary file, then rename it to `path` (parents are created).

    size_hint: about how many bytes the file will have, for the message when the space runs
    out. On any failure the temporary is removed; see the module docstring for the errors."""
    path = Path(path)
    create_folder(path.parent)
    tmp = path.with_name(path.name + TEMPORARY_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        written = _remove_temporary(tmp)
        raise _plain_error(error, path, max(size_hint or 0, written)) from None
    return path


def create_folder(path: Path, what: str | None = None) -> Path:
    """`mkdir -p path`; WriteError (one line, naming `what`, e.g. '--out', and the path) when a
    part of the path is a file or the file system refuses."""
    path = Path(path)
    label = f"{what} {path}" if what else str(path)
    try:
        if path.is_dir():
            return path
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            where = "" if blocker == path else f" ({blocker} is a file)"
            raise WriteError(f"cannot create the folder {label}: a file is in the way{where}")
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _plain_error(error, path, 0, creating=label) from None
    return path


def _remove_temporary(tmp: Path) -> int:
    """Delete a failed write's temporary; the bytes it had reached (0 if there is none)."""
    try:
        size = tmp.stat().st_size
        tmp.unlink()
        return size
    except OSError:
        return 0


def _plain_error(error: BaseException, path: Path, needs: int, creating: str | None = None) -> BaseException:
    """What a failed write raises: the KeyboardInterrupt or SystemExit behind it (torch.save
    wraps them in RuntimeError "unexpected pos"); a WriteError for a full disk, a limit or a
    read-only folder anywhere in the error's chain; else the error itself."""
    chain, seen = [], error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for e in chain:
        if not isinstance(e, Exception):
            return e
    for e in chain:
        if isinstance(e, WriteError):
            return e
        if isinstance(e, OSError) and e.errno in NO_SPACE:
            return WriteError(f"cannot write {path}: {_space_text(e.errno, path, needs)}")
        if isinstance(e, OSError) and e.errno in NOT_WRITABLE:
            target = f"create the folder {creating}" if creating else f"write {path}"
            return WriteError(f"cannot {target}: {NOT_WRITABLE[e.errno]}")
    return error


def _space_text(code: int, path: Path, needs: int) -> str:
    """'no space left on device; it needs about 57.3 MB, 12.0 MB free on /runs/x' (or, for
    EFBIG, the file-size limit)."""
    need = f"it needs about {format_bytes(needs)}" if needs else "it needs more"
    if code == errno.EFBIG:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        of = f" of {format_bytes(limit)}" if limit != resource.RLIM_INFINITY else ""
        return f"{NO_SPACE[code]}{of}; {need}"
    try:
        stat = os.statvfs(path.parent)
    except OSError:
        return f"{NO_SPACE[code]}; {need}"
    return f"{NO_SPACE[code]}; {need}, {format_bytes(stat.f_bavail * stat.f_frsize)} free on {path.parent}"


def format_bytes(size: int) -> str:
    """1536 → '1.5 kB', 57_300_000 → '57.3 MB' (decimal units)."""
    if size < 1000:
        return f"{size} bytes"
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            return f"{size:.1f} {unit}"


def tensor_bytes(obj) -> int:
    """The bytes of the distinct tensor storages in a nest of dicts, lists and tuples."""
    storages: dict[int, int] = {}
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return sum(storages.values())


def save_torch(obj, path: Path) -> Path:
    return atomic_write(path, lambda f: torch.save(obj, f), size_hint=tensor_bytes(obj))


def save_text(text: str, path: Path) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode()))


def save_json(obj, path: Path) -> Path:
    return save_text(json.dumps(obj, indent=2) + "\n", path)


def save_npz(path: Path, **arrays) -> Path:
    """np.savez of the arrays (uncompressed), atomically."""
    def write(f):
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        f.write(buffer.getvalue())
    return atomic_write(path, write)


def save_image(pixels: np.ndarray | torch.Tensor, path: Path) -> Path:
    """uint8 [H, W], [H, W, C] (numpy) or [C, H, W] (torch) → PNG, or GIF/JPEG by the suffix."""
    if isinstance(pixels, torch.Tensor):
        pixels = pixels.detach().cpu().permute(1, 2, 0).numpy()
    image = Image.fromarray(np.ascontiguousarray(pixels).squeeze())
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF"}.get(Path(path).suffix.lower(), "PNG")
    return atomic_write(path, lambda f: image.save(f, format=fmt))


def save_gif(frames: list[np.ndarray], path: Path, duration_ms: int = 120) -> Path:
    """uint8 [H, W, 3] frames → a looping animated GIF, atomically."""
    images = [Image.fromarray(np.ascontiguousarray(frame)) for frame in frames]
    return atomic_write(path, lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                                       duration=duration_ms, loop=0))


def append_json_line(path: Path, row: dict) -> None:
    """Append `row` as one line of strict JSON (a NaN or infinity is an error, not a bad line)."""
    line = (json.dumps(row, allow_nan=False) + "\n").encode()
    try:
        with open(path, "a+b") as f:
            size = os.fstat(f.fileno()).st_size
            if size and os.pread(f.fileno(), 1, size - 1) != b"\n":
                line = b"\n" + line  # the previous write was cut short
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
    except OSError as error:  # a full disk, a limit, a read-only folder: one line (atomic_write's words)
        raise _plain_error(error, Path(path), len(line)) from None
