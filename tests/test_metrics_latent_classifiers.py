"""knn1 and linear_svm: the classifiers against scikit-learn on the same arrays, and the metrics of
a tiny model on a small labelled digit database against codes computed here from E itself."""
import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import LinearSVC

from alae.datasets import LMDBDataset, to_model_range
from alae.metrics import compute_metrics
from alae.randomness import derive_seed
from alae.metrics.latent_classifiers import SVM_C, linear_svm_labels, nearest_neighbour_labels
from digit_database import code_of, networks, write_digit_database, write_family_model

HOLDOUT = 50


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digit_database(tmp_path_factory.mktemp("digits"), train_per_class=20, test_per_class=5)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {name: write_family_model(folder / f"{name}.pt", name, seed) for seed, name in enumerate(("vae", "wae"))}


def clusters(rng, count, dim=5, classes=4):
    labels = rng.integers(0, classes, count)
    return rng.normal(size=(count, dim)) + 2 * labels[:, None] * np.eye(dim)[labels % dim], labels


def test_nearest_neighbour_labels_are_scikit_learns_1nn():
    rng = np.random.default_rng(0)
    (train, train_labels), (test, _) = clusters(rng, 300), clusters(rng, 2000)  # two distance blocks
    expected = KNeighborsClassifier(n_neighbors=1).fit(train, train_labels).predict(test)
    np.testing.assert_array_equal(nearest_neighbour_labels(train, train_labels, test), expected)


def test_linear_svm_labels_are_linear_svcs():
    rng = np.random.default_rng(1)
    (train, train_labels), (test, _) = clusters(rng, 300), clusters(rng, 100)
    expected = LinearSVC(C=0.1, max_iter=20_000, random_state=7).fit(train, train_labels).predict(test)
    predicted, converged = linear_svm_labels(train, train_labels, test, 7)
    assert SVM_C == 0.1 and converged
    np.testing.assert_array_equal(predicted, expected)


def split_codes(model, name, db):
    """(training codes, labels, held-out codes, labels) from E's output on the database's 28 px digits."""
    images = LMDBDataset(db, 28)
    x = to_model_range(torch.stack([images[i] for i in range(len(images))]))
    with torch.no_grad():
        codes = code_of(model, name, x).double().numpy()
    labels = np.array([images.label(i) for i in range(len(images))])
    cut = len(images) - HOLDOUT
    return codes[:cut], labels[:cut], codes[cut:], labels[cut:]


@pytest.mark.parametrize("name", ["vae", "wae"])
def test_knn1_and_linear_svm_of_a_model_score_its_held_out_codes(name, models, digits):
    model = networks(models[name])
    train, train_labels, test, test_labels = split_codes(model, name, digits)
    knn, svm = compute_metrics(["knn1", "linear_svm"], model, digits, holdout=HOLDOUT, seed=3, batch=16,
                               progress=False)
    knn_expected = KNeighborsClassifier(n_neighbors=1).fit(train, train_labels).score(test, test_labels)
    assert knn.value == pytest.approx(knn_expected, abs=1e-12)
    assert knn.images == {"training": 200, "held_out": HOLDOUT}
    seed = derive_seed(3, "linear_svm") % 2**32  # the documented random_state
    svm_expected = LinearSVC(C=0.1, max_iter=20_000, random_state=seed).fit(train, train_labels).score(test, test_labels)
    assert svm.value == pytest.approx(svm_expected, abs=1e-12) and svm.info["standardised"] is False
