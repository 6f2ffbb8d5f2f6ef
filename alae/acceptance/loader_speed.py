"""Part 7: the data loader at 1024 px against what the measured training step consumes.

A database of synthetic 1024 px images (`alae.datasets.benchmark.write_synthetic_images`: smooth
random fields plus noise, so the records' sizes are like photographs') is built in the run's
folder and read by a shuffled, mirrored DataLoader with 0, 4 and 8 workers, at most the CPU
count (`loader_images_per_second`). The step's rate is part 4's fp32 img/s at that resolution (the
ffhq config), when it was measured; the loader must deliver at least that.
"""
from __future__ import annotations

import os
from pathlib import Path

from alae.acceptance.report import FAILED, MEASURED, PASSED, Part
from alae.datasets.benchmark import loader_images_per_second, write_synthetic_images
from alae.datasets.builder import build_database, default_workers
from alae.datasets.lmdb_dataset import LMDBDataset


def loader_part(folder: Path, step_rate: float | None, resolution: int = 1024, count: int = 32,
                workers: tuple[int, ...] = (0, 4, 8), batch: int = 8, seconds: float = 5.0, number: int = 7) -> Part:
    """Part 7; `step_rate` is the training step's img/s at `resolution` (None: not measured)."""
    part = Part(number, f"data loader at {resolution} px", columns=["workers", "loader img/s", "step img/s",
                                                                    "loader / step"])
    write_synthetic_images(folder / "images", count, resolution)
    build_database(str(folder / "images"), folder / "db", max_resolution=resolution, min_resolution=resolution,
                   workers=default_workers())
    dataset = LMDBDataset(folder / "db", resolution, mirror=True)
    for w in sorted({min(w, os.cpu_count() or 1) for w in workers}):
        rate = loader_images_per_second(dataset, w, batch, seconds)
        part.rows.append([w, rate, "" if step_rate is None else step_rate,
                          "" if step_rate is None else rate / step_rate])
    best = max(row[1] for row in part.rows)
    if step_rate is None:
        part.status = MEASURED
        part.summary = f"up to {best:.0f} img/s (batch {batch}); the step at {resolution} px was not measured"
    else:
        part.status = PASSED if best >= step_rate else FAILED
        part.summary = f"up to {best:.0f} img/s against the step's {step_rate:.0f} img/s ({best / step_rate:.1f}x)"
    return part
