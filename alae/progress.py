"""Progress of long work, for people and for log files: `progress(...)` is every bar of alae.

On a terminal it is a live tqdm bar (rate and ETA). Anywhere else (a log file, a pipe, a job
scheduler's output) it is `LineProgress`: one whole line per update, written when
`LINE_EVERY_S` seconds have passed since the last line or another `LINE_EVERY_FRACTION` of the
total is done (no more often than every `LINE_MIN_S` seconds), and a last line when it closes;
never carriage-return frames. A low module, so that the metrics, the dataset builder, the
training loop and the tools show the same bars without importing the command-line layer.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Iterable, TextIO

from tqdm import tqdm

LINE_EVERY_S = 30.0  # a line at least this often while work goes on
LINE_EVERY_FRACTION = 0.05  # and one whenever another 5% of the total is done
LINE_MIN_S = 1.0  # but never two lines within this many seconds (short work prints little)


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "img",
             initial: int = 0, unit_scale: bool = False, disable: bool = False, file: TextIO | None = None):
    """A bar over `iterable` (None: one advanced by hand with `update(n)` up to `total`) on `file`
    (default stderr): tqdm on a terminal, `LineProgress` otherwise; nothing shown with `disable`.
    Either has update, set_postfix_str, write, close and works as a context manager."""
    file = sys.stderr if file is None else file
    if not disable and is_terminal(file):
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, unit_scale=unit_scale,
                    dynamic_ncols=True, file=file)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial, unit_scale=unit_scale,
                        disable=disable, file=file)


def is_terminal(file: TextIO) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def format_count(n: float, unit_scale: bool) -> str:
    """1234567 → '1.23M' with unit_scale (SI prefixes, as tqdm), else '1234567'."""
    return tqdm.format_sizeof(n) if unit_scale else f"{n:.0f}"


def format_duration(seconds: float) -> str:
    """12s, 3m 04s, 5h 06m 07s, 2d 03h 04m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s // 60 % 60:02d}m {s % 60:02d}s"
    return f"{s // 86400}d {s // 3600 % 24:02d}h {s // 60 % 60:02d}m"


class LineProgress:
    """Progress as whole lines (module docstring): `desc: 12.8k/600k img (2.1%), 2.35k img/s, ETA 4m 10s, postfix`."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "img",
                 initial: int = 0, unit_scale: bool = False, disable: bool = False, file: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.unit_scale, self.disable, self.file, self.clock = unit_scale, disable, file or sys.stderr, clock
        self.n = self.initial = self.last_n = initial
        self.postfix = ""
        self.start = self.last_time = clock()
        self.closed = False

    def __iter__(self):
        """The items of `iterable`, counted; the closing line when they are all done (as tqdm)."""
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.disable:
            return
        now = self.clock()
        since = now - self.last_time
        fraction_done = (self.n - self.last_n) / self.total if self.total else 0.0
        if since >= LINE_EVERY_S or (since >= LINE_MIN_S and fraction_done >= LINE_EVERY_FRACTION):
            self._line(now)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Text shown at the end of the next line (tqdm's `set_postfix_str`; `refresh` is ignored)."""
        self.postfix = s

    def write(self, s: str, file: TextIO | None = None) -> None:
        """Print a whole line of text (tqdm's `write`)."""
        print(s, file=file or self.file, flush=True)

    def close(self) -> None:
        """A last line when anything was done since the previous one."""
        if not self.closed and not self.disable and self.n != self.last_n:
            self._line(self.clock())
        self.closed = True

    def line(self, now: float) -> str:
        """The line that describes the progress at time `now`."""
        done = format_count(self.n, self.unit_scale)
        fields = [f"{done}/{format_count(self.total, self.unit_scale)} {self.unit} ({100 * self.n / self.total:.1f}%)"
                  if self.total else f"{done} {self.unit}"]
        elapsed = now - self.start
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0
        fields.append(f"{tqdm.format_sizeof(rate)} {self.unit}/s")
        if self.total and rate > 0 and self.n < self.total:
            fields.append(f"ETA {format_duration((self.total - self.n) / rate)}")
        elif self.n == self.total:
            fields.append(f"took {format_duration(elapsed)}")
        if self.postfix:
            fields.append(self.postfix)
        return f"{self.desc}: " * bool(self.desc) + ", ".join(fields)

    def _line(self, now: float) -> None:
        print(self.line(now), file=self.file, flush=True)
        self.last_time, self.last_n = now, self.n
