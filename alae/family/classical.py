"""Classical baselines on the digits' pixels, scored as the model metrics are, on the same split.

The arrays: training pixels [N, D] and held-out pixels [M, D] (float64 in [0, 1], `pixel_rows`)
with their int labels, the split of `alae.metrics.splits` (the database's last `holdout` images
held out). Each baseline returns a value in [0, 1] on the held-out images:

- knn1 / linear_svm on pixels: `latent_classifiers.nearest_neighbour_labels` and
  `linear_svm_labels` (LinearSVC(C=0.1), the codes' classifiers) applied to the pixels
  themselves: accuracy.
- knn1 / linear_svm on PCA codes (`pca_codes`): the same classifiers on the first `dim`
  principal components of the training pixels (PCA fitted on the training images only).
- k-means clusters (`kmeans_error`): K-means with K clusters on the training pixels; each
  cluster names the majority label of its training images (`class_error.cluster_classes`, the
  rule class_error uses for a clustering model); error of the held-out images.
- RBF SVM on N labels (`labelled_svm_error`): `sklearn.svm.SVC(kernel="rbf")` (scikit-learn's
  defaults, gamma "scale") fitted on the N class-balanced training images that semi-supervised
  training learns from (`alae.training.labelled.balanced_subset` with train.seed); error.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.svm import SVC

from alae.metrics.class_error import cluster_classes
from alae.metrics.latent_classifiers import linear_svm_labels, nearest_neighbour_labels
from alae.training.labelled import balanced_subset

PIXEL_MAX = 255.0  # uint8 pixels → [0, 1]
KMEANS_RESTARTS = 10  # scikit-learn's former default n_init: the best of 10 seeded restarts


def pixel_rows(images_u8: torch.Tensor) -> np.ndarray:
    """uint8 images [N, C, R, R] → float64 rows [N, C·R·R] in [0, 1]."""
    return images_u8.flatten(1).double().numpy() / PIXEL_MAX


def pca_codes(train: np.ndarray, test: np.ndarray, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train [N, dim], test [M, dim]): the first `dim` principal components of the rows, PCA fitted on train."""
    pca = PCA(n_components=dim, random_state=seed).fit(train)
    return pca.transform(train), pca.transform(test)


def knn1_accuracy(train, train_labels, test, test_labels) -> float:
    """Accuracy of the 1-nearest-neighbour rule (the knn1 metric's) on test [M, D]."""
    return float(np.mean(nearest_neighbour_labels(train, train_labels, test) == test_labels))


def linear_svm_accuracy(train, train_labels, test, test_labels, seed: int) -> float:
    """Accuracy of LinearSVC(C=0.1) (the linear_svm metric's) on test [M, D]."""
    predicted, _ = linear_svm_labels(train, train_labels, test, seed)
    return float(np.mean(predicted == test_labels))


def kmeans_error(train, train_labels, test, test_labels, clusters: int, classes: int, seed: int) -> float:
    """Held-out error of K-means clusters named by the majority label of their training rows."""
    kmeans = KMeans(n_clusters=clusters, n_init=KMEANS_RESTARTS, random_state=seed).fit(train)
    named = cluster_classes(torch.from_numpy(kmeans.labels_.astype(np.int64)), torch.as_tensor(train_labels),
                            clusters, classes)
    return float(np.mean(named[torch.from_numpy(kmeans.predict(test).astype(np.int64))].numpy() != test_labels))


def labelled_svm_error(train, train_labels, test, test_labels, count: int, classes: int, seed: int) -> float:
    """Held-out error of an RBF SVM fitted on the `count` class-balanced training rows chosen by `seed`."""
    chosen = balanced_subset(torch.as_tensor(train_labels), count, classes, seed).numpy()
    svm = SVC(kernel="rbf").fit(train[chosen], np.asarray(train_labels)[chosen])
    return float(np.mean(svm.predict(test) != test_labels))
