"""What rank 0 records while a run trains, in its run directory.

The log: INFO lines to RUN/log.txt (appended) and the console (`setup_logging`). Per tick:
the status line (log.txt and the console), one row of `stats.jsonl` and TensorBoard scalars
(`Loss/*`, `Schedule/*`, `Progress/*`, `Resources/*`, at the global image count).
Per metric tick: one log line, one row per metric in `metrics.jsonl` and `Metrics/NAME`.
A resumed run appends to both files (see docs/TRAINING.md for how to read them).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from alae.files import append_json_line
from alae.metrics import RESULTS_FILE, MetricResult, append_result
from alae.training.reports import TickReport

log = logging.getLogger("alae")

STATS_FILE = "stats.jsonl"


class TrainingRecords:
    """Rank 0's writer of a run's per-tick records; `writer` is the run's TensorBoard writer."""

    def __init__(self, run_dir: Path):
        self.writer = SummaryWriter(str(run_dir / "tb"))
        self.stats_path = run_dir / STATS_FILE
        self.metrics_path = run_dir / RESULTS_FILE

    def tick(self, report: TickReport) -> None:
        log.info(report.status_line())
        append_json_line(self.stats_path, report.row())
        scalars = {**{f"Loss/{name}": value for name, value in report.stats.items()},
                   "Schedule/lod": report.phase.lod, "Schedule/alpha": report.phase.alpha,
                   "Schedule/lr": report.phase.lr, "Schedule/batch": report.phase.batch,
                   "Progress/kimg": report.kimg, "Progress/img_per_s": report.img_per_s,
                   "Progress/sec_per_kimg": report.sec_per_kimg, "Progress/maintenance_s": report.maintenance_s}
        if report.peak_gpu_gib is not None:
            scalars["Resources/peak_gpu_mem_gib"] = report.peak_gpu_gib
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, report.images_seen)
        self.writer.flush()

    def metrics(self, results: list[MetricResult], report: TickReport) -> None:
        """The metrics computed at the tick of `report`: one metrics.jsonl line each (the
        `alae.metrics` record plus the tick and images seen), TensorBoard, one log line."""
        for r in results:
            if r.value is not None:
                self.writer.add_scalar(f"Metrics/{r.metric}", r.value, report.images_seen)
            append_result(self.metrics_path, r, tick=report.tick, images_seen=report.images_seen)
        self.writer.flush()
        log.info(f"metrics at kimg {report.kimg:.3f}: " + "  ".join(r.summary() for r in results))

    def close(self) -> None:
        self.writer.close()


class ConsoleHandler(logging.StreamHandler):
    """Console lines written through tqdm, so that they do not tear the progress bar; records
    logged with `extra={"console": False}` go to log.txt only."""

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(record, "console", True):
            return
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def setup_logging(run_dir: Path, is_main: bool) -> None:
    """Rank 0 logs INFO to RUN/log.txt (appending) and the console; other ranks log nothing below WARNING."""
    close_logging()
    log.setLevel(logging.INFO if is_main else logging.WARNING)
    log.propagate = False
    if is_main:
        file = logging.FileHandler(run_dir / "log.txt")
        file.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(file)
        console = ConsoleHandler(sys.stdout)
        console.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(console)


def close_logging() -> None:
    for handler in log.handlers:
        handler.close()
    log.handlers.clear()
