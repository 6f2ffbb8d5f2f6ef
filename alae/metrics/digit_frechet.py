"""fd_digits{N}k: the Fréchet distance of generated and real digits in the features of the
project's own digit classifier (digit_classifier.py), a sample-quality score that needs no
downloaded weights. It is not FID: other features, other scale; compare it only with itself
(same database, resolution and classifier cache version).

N·1000 generated images (`generation.generated_images`: 8-bit, seeded by (seed, "metric-z", i),
without style mixing unless `mixing`) against all the database's images at the resolution of
`lod`, both through `DigitClassifier.features` ([N, 64]); the distance is `frechet.frechet_distance`
of their means and covariances (float64).
"""
from __future__ import annotations

import numpy as np
import torch

from alae.metrics.digit_classifier import digit_classifier
from alae.metrics.evaluation import Evaluation
from alae.metrics.frechet import feature_moments, frechet_distance
from alae.metrics.generation import generated_images
from alae.metrics.results import Figures
from alae.metrics.sharding import gather_rows

DIGIT_MIN_SIDE = 4  # the classifier's two 2×2 poolings leave at least 1 px


def digit_problem(ev: Evaluation) -> str | None:
    """Why the digit classifier cannot be had for `ev` (no labels, other channels), or None."""
    database = ev.images(ev.full_resolution)
    if not database.has_labels:
        return f"needs class labels to train its digit classifier, and {ev.data} has none (MNIST databases have them)"
    if database.channels != ev.model.image_channels:
        return f"the model makes {ev.model.image_channels}-channel images and {ev.data} holds {database.channels}-channel ones"
    return None


def _features(ev: Evaluation, count: int, batches) -> np.ndarray | None:
    net, _ = digit_classifier(ev)
    parts = [net.features(images) for images in batches]
    gathered = gather_rows(torch.cat(parts), count, ev.ctx)
    return None if gathered is None else gathered.numpy()


def fd_digits(ev: Evaluation, name: str, count: int) -> Figures:
    real = range(len(ev.images(ev.resolution)))
    real_features = _features(ev, len(real), (images for _, images in ev.image_batches(real, ev.resolution)))
    generated = _features(ev, count, (generated_images(ev, keys, count) for keys in ev.chunks(range(count))))
    _, cached = digit_classifier(ev)
    images = {"generated": count, "real": len(real)}
    details = {"mixing": ev.mixing, "classifier": "cached" if cached else "trained", "holdout": ev.holdout}
    if generated is None:
        return Figures(None, images, details)
    value = frechet_distance(*feature_moments(generated), *feature_moments(real_features))
    return Figures(value, images, details)
