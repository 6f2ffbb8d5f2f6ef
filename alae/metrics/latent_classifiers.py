"""How well the codes separate the classes: classifiers fitted on the training images' codes,
scored on the held-out images' codes (the ALAE paper's MNIST evaluation; splits.py).

- knn1: accuracy in [0, 1] of the 1-nearest-neighbour rule in Euclidean distance: each held-out
  code takes the label of the nearest training code (the first one on a tie).
- linear_svm: accuracy in [0, 1] of `sklearn.svm.LinearSVC(C=0.1)` (the original ALAE's
  mnist_ref evaluation) fitted on the training codes as they are, not standardised (our
  choice: the original's scaling was not at hand), with up to
  `SVM_MAX_ITER` solver iterations, scikit-learn's other defaults and `random_state` derived
  from (seed, "linear_svm"); `converged` in the details says whether the solver converged.

Codes are the model's (`splits.codes`), computed in float32 and compared in float64, on rank 0.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

import alae.randomness as randomness
from alae.metrics import splits
from alae.metrics.evaluation import Evaluation
from alae.metrics.results import Figures

SVM_C = 0.1  # the original ALAE's mnist_ref eval.py: LinearSVC(C=0.1)
SVM_MAX_ITER = 20_000  # ours (scikit-learn's 1000 stops short on unscaled codes)
NEIGHBOUR_BLOCK = 1024  # held-out codes per distance block (memory: block × training codes float64)


def nearest_neighbour_labels(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray) -> np.ndarray:
    """The label [M] of the nearest row of train [N, D] (Euclidean, first on a tie) to each row of test [M, D]."""
    train_t = torch.from_numpy(np.asarray(train, np.float64))
    test_t = torch.from_numpy(np.asarray(test, np.float64))
    nearest = [torch.cdist(block, train_t, compute_mode="donot_use_mm_for_euclid_dist").argmin(dim=1)
               for block in test_t.split(NEIGHBOUR_BLOCK)]
    return np.asarray(train_labels)[torch.cat(nearest).numpy()] if nearest else np.zeros(0, np.int64)


def linear_svm_labels(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, seed: int) -> tuple[np.ndarray, bool]:
    """(predicted labels [M] of test [M, D], whether the solver converged) of LinearSVC(C=SVM_C,
    max_iter=SVM_MAX_ITER) fitted on train [N, D] with train_labels [N]; `seed` is its random_state."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        svm = LinearSVC(C=SVM_C, max_iter=SVM_MAX_ITER, random_state=seed).fit(train, train_labels)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return svm.predict(test), converged


def _split_codes(ev: Evaluation):
    train, test = splits.split(ev)
    train_codes, test_codes = splits.codes(ev, train), splits.codes(ev, test)
    images = {"training": len(train), "held_out": len(test)}
    if not ev.ctx.is_main:
        return None, images
    return (train_codes, splits.labels(ev, train), test_codes, splits.labels(ev, test)), images


def knn1(ev: Evaluation, name: str, count: None) -> Figures:
    arrays, images = _split_codes(ev)
    if arrays is None:
        return Figures(None, images, {"holdout": ev.holdout})
    train, train_labels, test, test_labels = arrays
    accuracy = float(np.mean(nearest_neighbour_labels(train, train_labels, test) == test_labels))
    return Figures(accuracy, images, {"holdout": ev.holdout, "distance": "euclidean"})


def linear_svm(ev: Evaluation, name: str, count: None) -> Figures:
    arrays, images = _split_codes(ev)
    details = {"holdout": ev.holdout, "C": SVM_C, "standardised": False}
    if arrays is None:
        return Figures(None, images, details)
    train, train_labels, test, test_labels = arrays
    seed = randomness.derive_seed(ev.seed, "linear_svm") % 2**32
    predicted, converged = linear_svm_labels(train, train_labels, test, seed)
    return Figures(float(np.mean(predicted == test_labels)), images, {**details, "converged": converged})
