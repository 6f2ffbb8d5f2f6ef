"""Append-only JSON Lines files (stats.jsonl, metrics.jsonl): one object per line, one write each.

Each row is written with a single `write` to a file opened for appending and synced before the
call returns, so a crash loses at most the row being written, never an earlier one. A reader
skips a last line that does not parse; the next append after such a torn line starts on a
fresh line. Rows are never rewritten.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


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
