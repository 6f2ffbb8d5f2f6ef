"""Feeding real images to training: data order, per-rank shards, held-out images.

The data order is a pure function of (seed, epoch, position): each epoch shuffles the
training indices with a generator seeded by (seed, epoch) and cuts them into consecutive
global batches; rank r of W takes rows [r·B/W, (r+1)·B/W) of every global batch. A
checkpoint stores (epoch, position), so a resumed run reads exactly the images an
uninterrupted run would, on any world size. Horizontal flips are drawn the same way, per
(epoch, index), so mirroring does not depend on the rank or the worker either.

Batches come by one of two paths with the same order, flips and labels: `memory_batches`
indexes the training split held in memory (small databases: `alae.training.run_data` decides),
`make_loader` reads the database image by image through a DataLoader (large ones).

The last `data.holdout` images of the database never enter training; they are the fixed
batch whose reconstructions are drawn in the sample grids and measured by MSE.

A batch carries the images and their class labels (-1 where the database stores none).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

import alae.datasets as datasets
import alae.randomness as randomness
from alae.config import Config, ConfigError


@dataclass(frozen=True)
class DataPosition:
    """How far training has read: the epoch and the offset of the next global batch in it."""

    epoch: int = 0
    offset: int = 0

    def batch_start(self, global_batch: int, num_train: int) -> "DataPosition":
        """Where the next global batch starts: here, or at the next epoch if this one is too short."""
        if self.offset + global_batch > num_train:
            return DataPosition(self.epoch + 1, 0)
        return self

    def advance(self, global_batch: int, num_train: int) -> "DataPosition":
        """The position after one more global batch."""
        start = self.batch_start(global_batch, num_train)
        return DataPosition(start.epoch, start.offset + global_batch)


def epoch_order(seed: int, epoch: int, num_train: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(permutation of range(num_train), flip bit per index) for one epoch."""
    g = randomness.generator(seed, "data", epoch)
    return torch.randperm(num_train, generator=g), torch.randint(0, 2, (num_train,), generator=g, dtype=torch.bool)


def check_batch_fits(global_batch: int, num_train: int) -> None:
    """ConfigError when one global batch needs more images than the training set holds."""
    if global_batch > num_train:
        raise ConfigError(
            f"the global batch ({global_batch}) is larger than the training set ({num_train} images after "
            f"data.holdout): lower train.batch_per_lod or add images"
        )


def rank_rows(num_train: int, global_batch: int, rank: int, world_size: int, seed: int, start: DataPosition,
              mirror: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (image indices int64 [B/W], flip bits bool [B/W]): this rank's rows of each global
    batch from `start` on (module docstring); flips all False without `mirror`."""
    check_batch_fits(global_batch, num_train)
    per_rank = global_batch // world_size
    position = start
    epoch, order, flips = None, None, None
    while True:
        position = position.batch_start(global_batch, num_train)
        if position.epoch != epoch:
            epoch = position.epoch
            order, flips = epoch_order(seed, epoch, num_train)
            flips &= mirror
        first = position.offset + rank * per_rank
        rows = order[first : first + per_rank]
        yield rows, flips[rows]
        position = position.advance(global_batch, num_train)


class ShardSampler(Sampler):
    """Endless (index, flip) pairs for one rank, starting at `start`, one rank-slice per global batch."""

    def __init__(self, num_train: int, global_batch: int, rank: int, world_size: int, seed: int,
                 start: DataPosition, mirror: bool):
        check_batch_fits(global_batch, num_train)
        self.order = (num_train, global_batch, rank, world_size, seed, start, mirror)

    def __iter__(self):
        for rows, flips in rank_rows(*self.order):
            yield from zip(rows.tolist(), flips.tolist())


NO_LABEL = -1  # the label of an image in a database without labels


class Batch(NamedTuple):
    """This rank's share of a global batch: images uint8 [B/W, C, R, R]; labels int64 [B/W]
    (NO_LABEL where the database has none); with `data.labelled`, also this rank's share of the
    step's labelled batch (`alae.training.labelled`): (uint8 images [B/W, C, R, R], int64 labels [B/W])."""

    images: torch.Tensor
    labels: torch.Tensor
    labelled: tuple[torch.Tensor, torch.Tensor] | None = None


def collate_batch(items: list[tuple[torch.Tensor, int]]) -> Batch:
    return Batch(*default_collate(items))


class MirroredImages(Dataset):
    """Wraps an LMDBDataset: item (index, flip) → (uint8 [C, H, W], flipped horizontally if asked;
    its label: `labels[index]` when given (the run's training labels), else the database's, or NO_LABEL)."""

    def __init__(self, images: Dataset, labels: torch.Tensor | None = None):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, item):
        index, flip = item
        image = self.images[index]
        if self.labels is not None:
            label = int(self.labels[index])
        else:
            label = self.images.label(index) if self.images.has_labels else NO_LABEL
        return (image.flip(-1) if flip else image), label


def resolve_data_path(cfg: Config, override: str | None) -> Path:
    """`--data` or `data.path`; the words `lfw` and `mnist` build (once) and return the embedded
    demo faces and digits."""
    path = override or cfg.data.path
    if not path:
        raise ConfigError("no training data: give --data PATH or set data.path (an alae LMDB; see docs/DATA.md)")
    if path == "lfw":
        return datasets.ensure_lfw_database(datasets.default_cache_dir(), max_res=cfg.model.resolution)
    if path == "mnist":
        return datasets.ensure_mnist_database(datasets.default_cache_dir())
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"data path does not exist: {path} (build one with alae-prepare SOURCE {path})")
    return path


def open_images(path: Path, resolution: int):
    """The database at one resolution, unflipped: training flips come from the sampler (per epoch
    and index, `data.mirror`), never from LMDBDataset's own `mirror`, which draws from torch's
    global RNG and would not repeat on resume."""
    return datasets.LMDBDataset(path, resolution)


def check_database(path: Path, cfg: Config) -> Dataset:
    """The database at the model's resolution, once it is known to fit the config: it stores every
    resolution the schedule trains at, in the model's number of channels, and the labels a config
    that uses them needs. ConfigError (one line, naming the fields) otherwise."""
    m, traits, objective = cfg.model, cfg.traits, cfg.train.objective
    images = open_images(path, m.resolution)
    missing = [m.resolution_at(lod) for lod in range(m.num_lods) if m.resolution_at(lod) not in images.resolutions]
    if missing:
        raise ConfigError(f"{path} does not store {', '.join(map(str, missing))} px, which model.resolution "
                          f"{m.resolution} trains at; it stores {', '.join(map(str, images.resolutions))}")
    if images.channels != m.image_channels:
        raise ConfigError(f"model.image_channels is {m.image_channels} but {path} stores {images.channels}-channel "
                          f"images")
    if traits.prior_labels and not images.has_labels:
        raise ConfigError(f"{objective}.prior_labels needs class labels, and {path} has none (alae-prepare stores the "
                          f"labels of MNIST sources)")
    if traits.prior_labels and images.classes != traits.prior_components:
        raise ConfigError(f"{objective}.prior_components is {traits.prior_components} but {path} has "
                          f"{images.classes} classes")
    label_use = "data.labelled" if cfg.data.labelled else f"{objective}.categories_from=label" if (
        traits.decoder_labels) else None
    if label_use and not images.has_labels:
        raise ConfigError(f"{label_use} needs class labels, and {path} has none (alae-prepare stores the labels of "
                          f"MNIST sources)")
    if label_use and images.classes != traits.categories:
        raise ConfigError(f"{objective}.categories is {traits.categories} but {path} has {images.classes} classes "
                          f"({label_use})")
    return images


def make_loader(images: Dataset, num_train: int, global_batch: int, rank: int, world_size: int, seed: int,
                start: DataPosition, mirror: bool, workers: int, labels: torch.Tensor | None = None) -> DataLoader:
    """An endless loader of this rank's Batches (uint8 images [B/W, C, R, R], labels) from `start` on,
    read image by image (in `workers` processes) from `images`, the database at one resolution;
    `labels` (int64 [num_train]) replace the database's when given."""
    sampler = ShardSampler(num_train, global_batch, rank, world_size, seed, start, mirror)
    return DataLoader(
        MirroredImages(images, labels),
        batch_size=global_batch // world_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_batch,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )


def memory_batches(images: torch.Tensor, labels: torch.Tensor, global_batch: int, rank: int, world_size: int,
                   seed: int, start: DataPosition, mirror: bool, pin_memory: bool) -> Iterator[Batch]:
    """The Batches `make_loader` gives, drawn by index from the training split held in memory:
    `images` uint8 [num_train, C, R, R] and `labels` int64 [num_train]. The same images, flips
    and labels in the same order, without per-image Python. `pin_memory` (as the DataLoader's,
    when a GPU is there): each batch in page-locked memory, so that its copy to the GPU is
    asynchronous instead of waiting for the GPU's queued work."""
    for rows, flips in rank_rows(len(images), global_batch, rank, world_size, seed, start, mirror):
        batch = images[rows]
        if flips.any():
            batch[flips] = batch[flips].flip(-1)
        batch_labels = labels[rows]
        yield Batch(batch.pin_memory(), batch_labels.pin_memory()) if pin_memory else Batch(batch, batch_labels)


def held_out_images(images: Dataset, holdout: int) -> torch.Tensor:
    """The last `holdout` images of `images` (a database at one resolution) as uint8 [holdout, C, R, R]."""
    return torch.stack([images[i] for i in range(len(images) - holdout, len(images))])


def database_labels(images: Dataset) -> torch.Tensor:
    """The label of every image of `images` (a database at one resolution), int64 [N]; NO_LABEL
    throughout a database without labels."""
    if not images.has_labels:
        return torch.full((len(images),), NO_LABEL, dtype=torch.int64)
    return torch.tensor([images.label(i) for i in range(len(images))], dtype=torch.int64)
