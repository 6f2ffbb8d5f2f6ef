"""The split of the database that the code, likelihood and digit metrics share, and its labels.

Held-out images: the database's last `holdout` (training's `data.holdout`, the images training
never saw, `alae.training.data.held_out_images`; alae-metrics --holdout); training images: all
those before them. For the embedded MNIST digits with holdout 500 that is 4,500 training and the
500 test digits (`alae.datasets.mnist`).

The `*_problem(ev)` functions give the one line a metric is skipped with when the split or the
labels are missing (None when all is there); the registry calls them before computing.
"""
from __future__ import annotations

import numpy as np
import torch

from alae.datasets import to_model_range
from alae.metrics.evaluation import Evaluation
from alae.metrics.sharding import gather_rows


def split_problem(ev: Evaluation) -> str | None:
    """Why `ev` has no training / held-out split, or None."""
    total = len(ev.images(ev.full_resolution))
    if ev.holdout is None:
        return "needs held-out images: pass --holdout N (training passes data.holdout)"
    if not 0 < ev.holdout < total:
        return f"holdout {ev.holdout} leaves no training or no held-out images of the {total} in {ev.data}"
    return None


def labels_problem(ev: Evaluation) -> str | None:
    """Why `ev` cannot give class labels for its split, or None."""
    if not ev.images(ev.full_resolution).has_labels:
        return f"needs class labels, and {ev.data} has none (MNIST databases have them)"
    return split_problem(ev)


def split(ev: Evaluation) -> tuple[range, range]:
    """(training indices, held-out indices) of the database (call after `split_problem` is None)."""
    total = len(ev.images(ev.full_resolution))
    return range(total - ev.holdout), range(total - ev.holdout, total)


def labels(ev: Evaluation, indices: range) -> np.ndarray:
    """int64 [len(indices)]: the class labels of database images `indices`."""
    images = ev.images(ev.full_resolution)
    return np.array([images.label(i) for i in indices], dtype=np.int64)


def image_labels(ev: Evaluation, batch: range) -> torch.Tensor | None:
    """The labels of database images `batch` (int64 on the device) for a model whose decoder
    takes them; None for every other model."""
    if not ev.model.decoder_labels:
        return None
    return torch.from_numpy(labels(ev, batch)).to(ev.device)


@torch.no_grad()
def codes(ev: Evaluation, indices: range) -> np.ndarray | None:
    """float64 [len(indices), latent]: the model's codes (`LatentAutoencoder.encode`: w = E(x) for
    ALAE, a Gaussian posterior's mean, E(x) or E(x, 0) for the others) of database images
    `indices` at (lod, alpha), each rank encoding its shard; on rank 0, None elsewhere. For a
    model whose decoder takes the label (aae.categories_from=label) the code is z alone: the
    one-hot label it is given is no part of what E learnt."""
    key = ("codes", indices.start, indices.stop)
    if key not in ev.memo:
        model = ev.model
        parts = [model.encode(to_model_range(images), ev.lod, ev.alpha, labels=image_labels(ev, batch)).float()
                 [:, :model.latent_dim if model.decoder_labels else None]
                 for batch, images in ev.image_batches(indices, ev.resolution)]
        gathered = gather_rows(torch.cat(parts), len(indices), ev.ctx)
        ev.memo[key] = None if gathered is None else gathered.double().numpy()
    return ev.memo[key]
