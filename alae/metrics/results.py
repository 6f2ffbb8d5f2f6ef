"""What a metric returns, and its record in a run's ``metrics.jsonl``.

Each line of ``metrics.jsonl`` is one JSON object (`MetricResult.record`): ``metric``,
``value`` (null when the metric was skipped, with ``skipped`` saying why, or not finite,
with ``not_finite`` holding it), ``images`` (how many
of each kind it used), ``model``, ``kimg``, ``resolution``, ``lod``, ``alpha``, ``seed``,
``world_size``, the metric's own settings (``mode`` and ``feature_network`` for FID/KID,
``lpips`` for LPIPS-based metrics, ``mixing`` for generated images, ...), ``seconds`` and
``timestamp``. A line is appended with a single write of the whole line; a reader skips a last
line that a crash cut short, and the next append starts on a fresh line.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from alae.files import append_json_line, create_folder

RESULTS_FILE = "metrics.jsonl"


@dataclass
class Figures:
    """What one metric computes: its value (on rank 0; None elsewhere until broadcast), the
    image counts it used, and settings or facts worth recording (e.g. cached statistics)."""

    value: float | None
    images: dict[str, int]
    details: dict = field(default_factory=dict)


@dataclass
class MetricResult:
    """One metric of one model: the same on every rank. value is None when skipped."""

    metric: str
    value: float | None
    images: dict[str, int]
    seconds: float
    info: dict  # model, kimg, resolution, lod, alpha, seed, world_size and the metric's details
    skipped: str | None = None

    def record(self) -> dict:
        """The JSON object of this result's metrics.jsonl line."""
        finite = self.value is not None and math.isfinite(self.value)
        line = {"metric": self.metric, "value": self.value if finite else None, "images": self.images, **self.info,
                "seconds": round(self.seconds, 3), "timestamp": round(time.time(), 3)}
        if self.value is not None and not finite:
            line["not_finite"] = str(self.value)  # strict JSON has no NaN
        if self.skipped:
            line["skipped"] = self.skipped
        return line

    def summary(self) -> str:
        """One line for people: `fid50k_full 4.123 (50000 generated, 70000 real; clean; 812.3 s)`."""
        counts = ", ".join(f"{n} {kind}" for kind, n in self.images.items())
        if self.skipped:
            return f"{self.metric} skipped: {self.skipped}"
        mode = f"; {self.info['mode']}" if "mode" in self.info else ""
        return f"{self.metric} {self.value:.6g} ({counts}{mode}; {self.seconds:.1f} s)"


def append_result(path: Path, result: MetricResult, **extra) -> Path:
    """Append `result` (plus `extra` fields) as one line to the metrics.jsonl at `path`, created with its folder."""
    path = Path(path)
    create_folder(path.parent)
    append_json_line(path, {**result.record(), **extra})
    return path


def read_results(path: Path) -> list[dict]:
    """The records of a metrics.jsonl; lines that are not whole JSON objects (a torn write) are skipped."""
    records = []
    for text in Path(path).read_text().splitlines():
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
