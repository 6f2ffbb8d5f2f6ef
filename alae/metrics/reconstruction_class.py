"""rec_class: how often a reconstruction keeps its image's class, as a classifier of pixels judges.

The judge: `sklearn.svm.SVC` (an RBF kernel, scikit-learn's defaults: C = 1, gamma 'scale') fitted
on the pixels in [0, 1] of the training images (splits.py; the first `JUDGE_IMAGES` of them when
there are more: an RBF SVM's fit grows with the square of its images), at the model's full
resolution. The figure: the share in [0, 1] of held-out images whose reconstruction (mse_rec's,
`reconstruct_at_full_resolution`, clamped to [−1, 1] and brought to [0, 1]) the judge gives the
image's own label. `judge_accuracy` in the details is the judge's accuracy on the held-out
originals themselves: the ceiling of the figure. On rank 0 (the others reconstruct their shards).
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.svm import SVC

from alae.datasets import to_model_range
from alae.metrics import splits
from alae.metrics.evaluation import Evaluation
from alae.metrics.reconstruction import reconstruct_at_full_resolution
from alae.metrics.results import Figures
from alae.metrics.sharding import gather_rows

JUDGE_IMAGES = 10_000  # ours: the judge's training images at most (an RBF SVM's fit is quadratic in them)


def pixels01(images: torch.Tensor) -> np.ndarray:
    """Images [N, C, R, R] in [−1, 1] → float64 [N, C·R·R] in [0, 1]."""
    return ((images.double().clamp(-1, 1) + 1) / 2).flatten(1).numpy()


def database_pixels(ev: Evaluation, indices: range) -> np.ndarray:
    """float64 [len(indices), C·R·R]: database images `indices` at full resolution, in [0, 1]."""
    images = ev.images(ev.full_resolution)
    return pixels01(to_model_range(torch.stack([images[i] for i in indices])))


def rec_class(ev: Evaluation, name: str, count: None) -> Figures:
    train, test = splits.split(ev)
    judged = train[:JUDGE_IMAGES]
    parts = []
    for batch, images in ev.image_batches(test, ev.full_resolution):
        positions = range(batch.start - test.start, batch.stop - test.start)
        parts.append(reconstruct_at_full_resolution(ev.model, to_model_range(images), ev.lod, ev.alpha, positions,
                                                    ev.seed, splits.image_labels(ev, batch)).float().cpu())
    reconstructions = gather_rows(torch.cat(parts), len(test), ev.ctx)
    images = {"judge_training": len(judged), "held_out": len(test)}
    details = {"holdout": ev.holdout, "judge": "SVC(rbf, C=1, gamma=scale)"}
    if reconstructions is None:
        return Figures(None, images, details)
    judge = SVC().fit(database_pixels(ev, judged), splits.labels(ev, judged))
    labels = splits.labels(ev, test)
    kept = float(np.mean(judge.predict(pixels01(reconstructions)) == labels))
    ceiling = float(np.mean(judge.predict(database_pixels(ev, test)) == labels))
    return Figures(kept, images, {**details, "judge_accuracy": ceiling})
