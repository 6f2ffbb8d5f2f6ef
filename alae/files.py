"""Safe file writes: every file alae writes appears whole or not at all.

A write goes to `NAME.tmp` beside the target, is flushed and fsynced, then renamed over the
target, so a crash or Ctrl-C mid-write leaves the previous file (or none) in place.

Append-only JSON Lines files (stats.jsonl, metrics.jsonl) get one object per line, one write
each: each row is written with a single `write` to a file opened for appending and synced
before the call returns, so a crash loses at most the row being written, never an earlier one.
A reader skips a last line that does not parse; the next append after such a torn line starts
on a fresh line. Rows are never rewritten.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import torch
from PIL import Image


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(file)` on a temporary file, then rename it to `path` (parents are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def save_torch(obj, path: Path) -> Path:
    return atomic_write(path, lambda f: torch.save(obj, f))


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
    with open(path, "a+b") as f:
        size = os.fstat(f.fileno()).st_size
        if size and os.pread(f.fileno(), 1, size - 1) != b"\n":
            line = b"\n" + line  # the previous write was cut short
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
