"""The acceptance run's results: one `Part` per check, the time budget they share, and the
report files (`report.json`, `report.md`) and one-screen summary written from them.

A part's status: `passed`, `failed` (a check did not hold: the run exits non-zero), `skipped`
(with the reason: no CUDA GPU, one GPU only, an earlier part failed, the budget ran out) or
`measured` (figures without a pass/fail rule). Each part holds one table (`columns`, `rows`).
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from alae.files import save_json, save_text

PASSED, FAILED, SKIPPED, MEASURED = "passed", "failed", "skipped", "measured"


@dataclass
class Part:
    """One numbered part of the run; `rows` are lists of cells in the order of `columns`."""

    number: int
    title: str
    status: str = MEASURED
    summary: str = ""
    seconds: float = 0.0
    columns: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str) -> "Part":
        self.status, self.summary = SKIPPED, reason
        return self


class Budget:
    """Seconds left of `total` since construction; `share(fraction)` is what a part may use now:
    that fraction of what is left (parts after it keep the rest)."""

    def __init__(self, total: float, clock=time.monotonic):
        self.total, self.clock, self.start = total, clock, clock()

    def left(self) -> float:
        return max(0.0, self.total - (self.clock() - self.start))

    def elapsed(self) -> float:
        return self.clock() - self.start

    def share(self, fraction: float) -> float:
        return self.left() * fraction


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; else the platform's machine type) and core count."""
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
    except OSError:
        names = []
    return f"{names[0] if names else platform.machine()}, {os.cpu_count()} cores"


def machine() -> dict:
    """The machine and versions the report was made on."""
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "host": platform.node(), "cpu": cpu_model(),
            "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "gpus": gpus or ["none"]}


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.2f}"
    return str(value)


def markdown(parts: list[Part], info: dict, exit_status: int) -> str:
    lines = ["# alae-doctor --acceptance", "", f"Date: {info['date']}. Exit status {exit_status}.", "",
             "| machine | |", "|---|---|"]
    lines += [f"| {k} | {', '.join(v) if isinstance(v, list) else v} |" for k, v in info.items() if k != "date"]
    for part in parts:
        lines += ["", f"## {part.number}. {part.title}: {part.status}", "",
                  f"{part.summary} ({part.seconds:.1f} s)" if part.summary else f"({part.seconds:.1f} s)"]
        if part.columns and part.rows:
            lines += ["", "| " + " | ".join(part.columns) + " |", "|" + "---|" * len(part.columns)]
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in part.rows]
        lines += [""] + [f"- {note}" for note in part.notes] if part.notes else []
    return "\n".join(lines) + "\n"


def write_reports(out: Path, parts: list[Part], info: dict, budget: Budget, exit_status: int) -> tuple[Path, Path]:
    """`out/report.json` and `out/report.md`, each written atomically."""
    data = {"machine": info, "budget_s": budget.total, "elapsed_s": round(budget.elapsed(), 1),
            "exit_status": exit_status, "parts": [asdict(p) for p in parts]}
    json_path = save_json(json.loads(json.dumps(data, default=str)), Path(out) / "report.json")
    return json_path, save_text(markdown(parts, info, exit_status), Path(out) / "report.md")


SUMMARY_TITLE_WIDTH = 42


def summary_lines(parts: list[Part]) -> list[str]:
    width = max([SUMMARY_TITLE_WIDTH] + [len(p.title) for p in parts])
    return [f"{p.number}. {p.title:<{width}}  {p.status:<8}  {p.summary}" for p in parts]
