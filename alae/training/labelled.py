"""The labelled digits of semi-supervised training (`data.labelled`: the AAE paper's 100 labels).

The subset: N of the training images, N/K of each of the K classes, chosen by `train.seed`
alone (`balanced_subset`), so every run and every rank of one seed learns from the same labels.
Each step, the classification phase reads one labelled batch of the global batch's size, drawn
from the subset with replacement by (seed, step) (the paper's labelled mini-batch); rank r of W
takes its rows [r·B/W, (r+1)·B/W), as of the image batch. The images are read once per
resolution, unmirrored, and kept in memory (uint8).
"""
from __future__ import annotations

import torch

import alae.randomness as randomness
from alae.config import Config, ConfigError


def balanced_subset(labels: torch.Tensor, count: int, classes: int, seed: int) -> torch.Tensor:
    """Indices into `labels` (int [n] in [0, classes)), int64 [count], sorted: count/classes of
    each class drawn without replacement by `seed`; ConfigError when a class has too few."""
    if count % classes:
        raise ConfigError(f"data.labelled: {count} labels do not split evenly over {classes} classes")
    per_class = count // classes
    g = randomness.generator(seed, "labelled-subset")
    chosen = []
    for k in range(classes):
        members = (labels == k).nonzero().flatten()
        if len(members) < per_class:
            raise ConfigError(f"data.labelled: {count} labels need {per_class} images of class {k}, and the training "
                              f"images hold {len(members)}")
        chosen.append(members[torch.randperm(len(members), generator=g)[:per_class]])
    return torch.cat(chosen).sort().values


class LabelledSet:
    """The labelled subset of the training images (module docstring): `database.images(resolution)`
    gives the database at a resolution (the run's `RunData`); `train_labels` (int64 [num_train])
    are the training images' labels."""

    def __init__(self, database, train_labels: torch.Tensor, cfg: Config):
        self.database, self.seed = database, cfg.train.seed
        self.indices = balanced_subset(train_labels, cfg.data.labelled, cfg.traits.class_head, self.seed)
        self.labels = train_labels[self.indices]
        self._images: dict[int, torch.Tensor] = {}

    def images_at(self, resolution: int) -> torch.Tensor:
        """The subset's images, uint8 [N, C, R, R] at `resolution`."""
        if resolution not in self._images:
            images = self.database.images(resolution)
            self._images[resolution] = torch.stack([images[int(i)] for i in self.indices])
        return self._images[resolution]

    def batch(self, resolution: int, step: int, global_batch: int, rank: int,
              world_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's rows of step `step`'s labelled batch: (uint8 [B/W, C, R, R], int64 labels [B/W])."""
        g = randomness.generator(self.seed, step, "labelled-batch")
        picks = torch.randint(0, len(self.indices), (global_batch,), generator=g)
        per_rank = global_batch // world_size
        mine = picks[rank * per_rank:(rank + 1) * per_rank]
        return self.images_at(resolution)[mine], self.labels[mine]
