"""The classical baselines a comparison's table carries, on the same split as the systems.

The digits: the database at `DIGIT_SIDE` px, the last `holdout` held out (alae.metrics.splits).
Rows (alae.family.classical computes each figure):

- "pixels": knn1 and linear_svm on the raw pixels;
- "PCA-d codes", for each code size d of the compared systems: knn1 and linear_svm on the
  first d principal components;
- "k-means K": class_error of K-means clusters named by the majority rule, once per seed, for
  each K of a compared clustering model (`DEFAULT_CLUSTERS` without one);
- "RBF SVM, N labels": class_error of an RBF SVM on the N class-balanced labelled digits that
  train.seed = S selects, once per seed, for each N of a compared semi-supervised model
  (`DEFAULT_LABELLED` without one).

knn1 and linear_svm are deterministic given the metrics' seed and are computed once.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from alae.config import MLP_RESOLUTION
from alae.family.evaluation import METRIC_SEED
from alae.family.table import SystemRow
from alae.family import classical
from alae.training.data import open_images

DIGIT_SIDE = MLP_RESOLUTION  # the digits as stored (28 px); 32 px models see them with a zero border
DEFAULT_CLUSTERS = 16  # AAE paper §6
DEFAULT_LABELLED = 100  # AAE paper §5


def split_digits(data_path: Path, holdout: int):
    """(train pixels [N, 784], train labels [N], held-out pixels [M, 784], held-out labels [M], classes)."""
    images = open_images(data_path, DIGIT_SIDE)
    rows = classical.pixel_rows(torch.stack([images[i] for i in range(len(images))]))
    labels = np.array([images.label(i) for i in range(len(images))], dtype=np.int64)
    cut = len(images) - holdout
    return rows[:cut], labels[:cut], rows[cut:], labels[cut:], images.classes


def baseline_rows(data_path: Path, holdout: int, seeds: list[int], code_sizes: list[int], clusters: list[int],
                  labelled: list[int]) -> list[SystemRow]:
    """The baseline rows (module docstring), in that order."""
    train, train_labels, test, test_labels, classes = split_digits(data_path, holdout)
    arrays = (train, train_labels, test, test_labels)

    def classifiers(name: str, train_x: np.ndarray, test_x: np.ndarray) -> SystemRow:
        pair = (train_x, train_labels, test_x, test_labels)
        return SystemRow(name, {"knn1": [classical.knn1_accuracy(*pair)],
                                "linear_svm": [classical.linear_svm_accuracy(*pair, METRIC_SEED)]}, seeds=[METRIC_SEED])

    rows = [classifiers("pixels", train, test)]
    for dim in sorted(set(code_sizes)):
        rows.append(classifiers(f"PCA-{dim} codes", *classical.pca_codes(train, test, dim, METRIC_SEED)))
    for k in sorted(set(clusters)) or [DEFAULT_CLUSTERS]:
        rows.append(SystemRow(f"k-means {k}", {"class_error": [classical.kmeans_error(*arrays, k, classes, seed)
                                                               for seed in seeds]}, seeds=list(seeds)))
    for count in sorted(set(labelled)) or [DEFAULT_LABELLED]:
        rows.append(SystemRow(f"RBF SVM, {count} labels",
                              {"class_error": [classical.labelled_svm_error(*arrays, count, classes, seed)
                                               for seed in seeds]}, seeds=list(seeds)))
    return rows
