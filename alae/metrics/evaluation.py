"""What the metrics of one round share: the model at (lod, alpha), the data, the ranks, the feature networks.

An `Evaluation` is made once per `compute_metrics` call. It opens the database at the
resolutions asked for (or takes them from a database already open, `OpenDatabase`: the training
run's data), loads the Inception and LPIPS networks on first use, hands out this
rank's shard of any image range in batches, and keeps what two metrics of one round can share
(the generated features of fid50k and kid50k, the real statistics of one image range).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol, runtime_checkable

import torch
from torch.utils.data import DataLoader, Subset

from alae.datasets import LMDBDataset
from alae.distributed import Context
from alae.metrics.errors import MetricError
from alae.metrics.inception import InceptionFeatures
from alae.metrics.lpips import LPIPSError, load_lpips
from alae.metrics.sharding import shard
from alae.model import LatentAutoencoder
from alae.progress import progress


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


@runtime_checkable
class OpenDatabase(Protocol):
    """A database someone already opened: its `path`, and `images(resolution)`, the database at a
    resolution as an LMDBDataset or anything with its interface (len, uint8 [C, R, R] items,
    `channels`, `has_labels`, `label(i)`)."""

    path: Path

    def images(self, resolution: int): ...


@dataclass
class Evaluation:
    """The inputs of one round of metrics (see the package docstring for their meaning).

    model: eval-mode LatentAutoencoder on ctx.device; data: an alae LMDB (its path); lod, alpha: where the networks
    run (images at 4·2^lod px); holdout: held-out images at the end of the database for the
    reconstruction metrics, or None; seed: the base of every draw; batch: images per forward
    pass per rank; inception / lpips: resolved weight paths (None when no metric needs them);
    keep_real_features: real features are kept (and cached) because a KID of this round needs them;
    opened: `data` already open (None: opened here).
    """

    model: LatentAutoencoder
    data: Path
    lod: int
    alpha: float
    ctx: Context
    holdout: int | None = None
    seed: int = 0
    batch: int = 32
    mixing: bool = False
    mode: str = "clean"
    inception_path: Path | None = None
    lpips_path: Path | None = None
    workers: int = 0
    show_progress: bool = True
    keep_real_features: bool = False
    opened: OpenDatabase | None = None
    memo: dict = field(default_factory=dict)  # shared results of this round, keyed by what they are

    @property
    def device(self) -> torch.device:
        return self.ctx.device

    @property
    def resolution(self) -> int:
        """The side of the images the networks make and read at `lod`."""
        return self.model.resolution_at(self.lod)

    @property
    def full_resolution(self) -> int:
        return self.model.resolution

    def images(self, resolution: int):
        """The database at `resolution`, unflipped (an LMDBDataset: uint8 [3, R, R] items)."""
        key = ("images", resolution)
        if key not in self.memo:
            self.memo[key] = LMDBDataset(self.data, resolution) if self.opened is None else self.opened.images(resolution)
        return self.memo[key]

    def inception(self) -> InceptionFeatures:
        if "inception" not in self.memo:
            self.memo["inception"] = InceptionFeatures(self.inception_path, self.mode, self.device,
                                                       remember_digest=self.ctx.is_main)
        return self.memo["inception"]

    def lpips(self) -> torch.nn.Module:
        if "lpips" not in self.memo:
            try:
                self.memo["lpips"] = load_lpips(self.lpips_path, self.device)
            except LPIPSError as e:
                raise MetricError(str(e)) from None
        return self.memo["lpips"]

    def progress(self, total: int, desc: str):
        """A bar with rate and ETA over this rank's `total` images, on rank 0 when progress is shown."""
        if self.show_progress and self.ctx.is_main:
            return progress(None, total=total, desc=desc, unit="img")
        return _NoProgress()

    def my_shard(self, indices: range) -> range:
        """This rank's contiguous block of `indices` (MetricError when some rank would get none)."""
        if len(indices) < self.ctx.world_size:
            raise MetricError(f"{len(indices)} images cannot be shared by {self.ctx.world_size} ranks; "
                              f"use more images or fewer ranks")
        block = shard(len(indices), self.ctx.rank, self.ctx.world_size)
        return indices[block.start:block.stop]

    def chunks(self, indices: range) -> Iterator[range]:
        """This rank's block of `indices` in batches of at most `batch`."""
        mine = self.my_shard(indices)
        for first in range(0, len(mine), self.batch):
            yield mine[first:first + self.batch]

    def image_batches(self, indices: range, resolution: int) -> Iterator[tuple[range, torch.Tensor]]:
        """(database indices, uint8 [B, 3, R, R] on the device) for this rank's block of `indices`."""
        mine = self.my_shard(indices)
        loader = DataLoader(Subset(self.images(resolution), list(mine)), batch_size=self.batch,
                            num_workers=self.workers)
        first = 0
        for images in loader:
            yield mine[first:first + len(images)], images.to(self.device)
            first += len(images)
