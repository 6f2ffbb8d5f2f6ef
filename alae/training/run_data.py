"""The run's data, opened once, before anything of the run is written: `RunData(path, cfg)`.

One object holds what a run reads of its database: the database at each resolution the
schedule visits (one `LMDBDataset` each), every image's class label (read once; the training
batches carry the objective's `training_labels` of them where it defines one), the held-out
images and labels (the database's last `data.holdout`), the labelled subset of a
semi-supervised run, and the training split at the current resolution in memory while it is
small (at most `MEMORY_BUDGET` bytes: the MNIST digits, FFHQ up to 32 px), from which batches
are drawn by index; a larger split is read image by image through a DataLoader with
`data.workers` processes. Both give the same batches (`alae.training.data`). The loop, its sample
grids and its metrics (`alae.metrics.compute_metrics` takes it in place of a path) share it.

Opening it checks the database against the config (ConfigError, one line naming the fields):
every resolution the model trains at, the image channels, the labels a config uses, a
`data.holdout` that leaves training images, a global batch the training split can fill, a
labelled subset its classes can fill.
"""
from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Iterator

import torch

from alae.config import Config, ConfigError
from alae.training.data import (
    Batch,
    DataPosition,
    check_batch_fits,
    check_database,
    database_labels,
    held_out_images,
    make_loader,
    memory_batches,
    open_images,
)
from alae.training.labelled import LabelledSet
from alae.training.objectives import objective_named
from alae.training.schedule import phase_at

log = logging.getLogger("alae")

MEMORY_BUDGET = 512 * 2**20  # bytes: a training split up to this size is held in memory (per process)


class RunData:
    """A run's database, checked against its config and opened once (module docstring)."""

    def __init__(self, path: Path, cfg: Config):
        self.path = Path(path)
        self.resolution = cfg.model.resolution
        full = check_database(self.path, cfg)
        self.count, self.channels, self.holdout = len(full), full.channels, cfg.data.holdout
        self.num_train = self.count - self.holdout
        if self.num_train <= 0:
            raise ConfigError(f"data.holdout = {self.holdout} leaves no training images ({self.count} in {self.path})")
        last_lod = phase_at(cfg.train, cfg.model, max(0, round(cfg.train.total_kimg * 1000) - 1)).lod
        for batch in cfg.train.batch_per_lod[:last_lod + 1]:
            check_batch_fits(batch, self.num_train)
        self._images = {self.resolution: full}
        self.labels = database_labels(full)  # int64 [count]
        # The labels training batches carry, int64 [num_train]: an objective may keep only a fixed set of them.
        objective = objective_named(cfg.train.objective)
        self.training_labels = (objective.training_labels(self.labels[:self.num_train], cfg)
                                if hasattr(objective, "training_labels") else self.labels[:self.num_train])
        self.labelled = (LabelledSet(self, self.labels[:self.num_train], cfg) if cfg.data.labelled else None)
        self._split: tuple[int, torch.Tensor] | None = None  # (resolution, uint8 [num_train, C, R, R])

    def images(self, resolution: int):
        """The database at `resolution` (an LMDBDataset: uint8 [C, R, R] items, unflipped)."""
        if resolution not in self._images:
            self._images[resolution] = open_images(self.path, resolution)
        return self._images[resolution]

    @cached_property
    def held_out_images(self) -> torch.Tensor:
        """The last `data.holdout` images at the model's resolution, uint8 [holdout, C, R, R]."""
        return held_out_images(self.images(self.resolution), self.holdout)

    @property
    def held_out_labels(self) -> torch.Tensor:
        """Their labels, int64 [holdout] (NO_LABEL for a database without labels)."""
        return self.labels[self.num_train:]

    def training_split(self, resolution: int) -> torch.Tensor | None:
        """The training images at `resolution` in memory, uint8 [num_train, C, R, R], or None when
        they would take more than MEMORY_BUDGET bytes. Only the last resolution asked for is kept."""
        size = self.num_train * self.channels * resolution * resolution
        if size > MEMORY_BUDGET:
            return None
        if self._split is None or self._split[0] != resolution:
            self._split = None  # the previous resolution's images go first
            images = self.images(resolution)
            split = torch.stack([images[i] for i in range(self.num_train)])
            log.info(f"the {self.num_train} training images at {resolution} px are in memory "
                     f"({size / 2**20:.1f} MiB)")
            self._split = (resolution, split)
        return self._split[1]

    def batches(self, resolution: int, global_batch: int, rank: int, world_size: int, seed: int,
                start: DataPosition, mirror: bool, workers: int) -> Iterator[Batch]:
        """This rank's endless Batches at `resolution` from `start` on (alae.training.data's order):
        from memory when the split fits MEMORY_BUDGET, else through a DataLoader with `workers` processes."""
        split = self.training_split(resolution)
        if split is not None:
            return memory_batches(split, self.training_labels, global_batch, rank, world_size, seed, start,
                                  mirror, pin_memory=torch.cuda.is_available())
        return iter(make_loader(self.images(resolution), self.num_train, global_batch, rank, world_size, seed, start,
                                mirror, workers, self.training_labels))
