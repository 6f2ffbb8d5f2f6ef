"""Progress bars for long work: a tqdm bar with rate and ETA on stderr.

A low module, so that the metrics, the dataset builder and the tools show the same bar without
importing the command-line layer.
"""
from __future__ import annotations

import sys
from typing import Iterable

from tqdm import tqdm


def progress(iterable: Iterable | None, total: int | None = None, desc: str = "", unit: str = "img"):
    """A tqdm bar over `iterable` (None: a bar advanced by hand up to `total`) on stderr."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)
