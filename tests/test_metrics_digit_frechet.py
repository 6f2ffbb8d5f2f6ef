"""fd_digits{N}k: the distance in the cached classifier's features against scipy's matrix square
root and frechet.py, zero for identical sets, the cache reused (and rebuilt, to the same weights,
when torn)."""
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.linalg
import torch

from alae.datasets import LMDBDataset
from alae.metrics import compute_metrics
from alae.metrics.digit_classifier import FEATURES, DigitClassifier
from alae.metrics.frechet import feature_moments, frechet_distance
from alae.metrics.generation import generated_images
from digit_database import networks, write_digit_database, write_family_model


def scipy_frechet(a, b):
    """‖μa − μb‖² + tr(Σa + Σb − 2·sqrtm(Σa·Σb)), float64 (the formula of Heusel et al., via scipy)."""
    mu_a, mu_b, sa, sb = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(sa @ sb).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa + sb - 2 * root))


def cached_classifier(cache):
    (path,) = (cache / "metrics").glob("digits-*.npz")
    with np.load(path) as data:
        state = {name: torch.from_numpy(data[name]) for name in data.files if name != "key"}
    net = DigitClassifier(1, 10)
    net.load_state_dict(state)
    return path, net.eval()


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # dead ReLU features: singular covariances
def test_fd_digits_is_the_frechet_distance_in_the_cached_classifiers_features(tmp_path, monkeypatch):
    monkeypatch.setenv("ALAE_CACHE", str(tmp_path / "cache"))
    db = write_digit_database(tmp_path, train_per_class=20, test_per_class=5)
    model = networks(write_family_model(tmp_path / "aae.pt", "aae"))
    measure = lambda: compute_metrics(["fd_digits1k"], model, db, holdout=50, seed=2, batch=64, progress=False)[0]
    first = measure()
    assert first.info["classifier"] == "trained" and first.images == {"generated": 1000, "real": 250}

    path, net = cached_classifier(tmp_path / "cache")
    images = LMDBDataset(db, 28)
    ev = SimpleNamespace(model=model, seed=2, lod=0, alpha=1.0, device=torch.device("cpu"), mixing=False)
    with torch.no_grad():
        real = net.features(torch.stack([images[i] for i in range(len(images))])).double().numpy()
        generated = net.features(generated_images(ev, range(1000), 1000)).double().numpy()
    assert real.shape == (250, FEATURES)
    assert first.value == pytest.approx(scipy_frechet(generated, real), rel=1e-6)
    assert first.value == pytest.approx(frechet_distance(*feature_moments(generated), *feature_moments(real)), rel=1e-9)
    scale = np.trace(np.cov(real, rowvar=False))
    assert frechet_distance(*feature_moments(real), *feature_moments(real)) == pytest.approx(0, abs=1e-6 * scale)

    again = measure()
    assert again.info["classifier"] == "cached" and again.value == first.value
    path.write_bytes(path.read_bytes()[:100])  # a torn file: trained again, to the same weights
    rebuilt = measure()
    assert rebuilt.info["classifier"] == "trained" and rebuilt.value == first.value
