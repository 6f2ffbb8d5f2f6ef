"""rec_class: the RBF SVM judge against scikit-learn fitted here on the same pixels, the
reconstructions against G(E(x)) computed here, and the judge's accuracy on the originals."""
import numpy as np
import pytest
import torch
from sklearn.svm import SVC

from alae.datasets import LMDBDataset, to_model_range
from alae.metrics import compute_metrics
from alae.distributed import Context
from digit_database import networks, write_digit_database, write_family_model

HOLDOUT = 30


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digit_database(tmp_path_factory.mktemp("digits"), train_per_class=12, test_per_class=3)


def test_rec_class_is_the_share_of_reconstructions_an_rbf_svm_gives_their_class(digits, tmp_path):
    path = write_family_model(tmp_path / "vae.pt", "vae", 0)
    model = networks(path)
    images = LMDBDataset(digits, 28)
    x = torch.stack([images[i] for i in range(len(images))])
    labels = np.array([images.label(i) for i in range(len(images))])
    cut = len(images) - HOLDOUT
    x01 = x.double().flatten(1).numpy() / 255
    judge = SVC().fit(x01[:cut], labels[:cut])
    with torch.no_grad():
        rec = model.reconstruct(to_model_range(x[cut:]), 0, 1.0)
    rec01 = ((rec.double().clamp(-1, 1) + 1) / 2).flatten(1).numpy()
    expected = np.mean(judge.predict(rec01) == labels[cut:])
    (result,) = compute_metrics(["rec_class"], model, digits, ctx=Context(0, 0, 1, torch.device("cpu")),
                                holdout=HOLDOUT, progress=False)
    assert result.value == pytest.approx(expected, abs=1e-12)
    assert result.info["judge_accuracy"] == pytest.approx(np.mean(judge.predict(x01[cut:]) == labels[cut:]))
    assert result.images == {"judge_training": cut, "held_out": HOLDOUT}


def test_rec_class_needs_labels_and_a_split(digits, tmp_path):
    model = networks(write_family_model(tmp_path / "wae.pt", "wae", 1))
    (result,) = compute_metrics(["rec_class"], model, digits, ctx=Context(0, 0, 1, torch.device("cpu")), holdout=None,
                                progress=False)
    assert result.value is None and "held-out images" in result.skipped
