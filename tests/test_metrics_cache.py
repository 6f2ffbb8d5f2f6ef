"""Real-image statistics are computed once: reused by a second run, recomputed when the data,
resolution or mode change, never taken from a damaged or foreign cache file."""
import inception_stand_in as stand_in
import numpy as np
import pytest
import torch
from PIL import Image

from alae.datasets import build_database
from alae.metrics import compute_metrics
from alae.metrics.dataset_stats import real_statistics
from alae.metrics.evaluation import Evaluation
from alae.metrics.frechet import feature_moments, frechet_distance
from alae.metrics.inception import InceptionFeatures
from alae.metrics.sharding import single_process
from alae.model_files.loading import load_networks

metrics_cache, stand_ins, lfw16 = stand_in.metrics_cache, stand_in.stand_ins, stand_in.lfw16  # pytest fixtures


@pytest.fixture(scope="module")
def model(tiny_model):
    return load_networks(tiny_model, verbose=False)[1]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """An alae LMDB of 20 random faces at 4..16 px."""
    folder = tmp_path_factory.mktemp("faces")
    build_database(str(write_faces(folder / "png", seed=0)), folder / "db", max_resolution=16, workers=0)
    return folder / "db"


@pytest.fixture
def seen(monkeypatch):
    """The batch sizes the feature network is called with."""
    calls = []
    original = InceptionFeatures.__call__

    def spy(self, images):
        calls.append(len(images))
        return original(self, images)

    monkeypatch.setattr(InceptionFeatures, "__call__", spy)
    return calls


def write_faces(folder, seed):
    """20 random 16×16 PNGs named face00.png … face19.png (the same names for every seed)."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"face{i:02d}.png")
    return folder


def fid_rec(model, data, stand_ins, **options):
    (result,) = compute_metrics("fid_rec1k", model, data, inception=stand_ins[0], progress=False,
                                **{"mode": "legacy_tensorflow", **options})
    return result


def test_a_second_run_reuses_the_real_statistics(model, faces, stand_ins, seen, metrics_cache):
    first = fid_rec(model, faces, stand_ins)
    assert sum(seen) == 40 and first.info["real_statistics"] == "computed"  # 20 reals + 20 reconstructions
    assert len(list((metrics_cache / "metrics").glob("real-*.npz"))) == 1
    seen.clear()
    second = fid_rec(model, faces, stand_ins)
    assert sum(seen) == 20 and second.info["real_statistics"] == "cached"
    assert second.value == pytest.approx(first.value, rel=1e-12)


def test_changed_pictures_under_the_same_names_are_not_taken_for_the_cached_ones(model, tmp_path, stand_ins, seen):
    source, db = write_faces(tmp_path / "faces", seed=0), tmp_path / "db"
    build_database(str(source), db, max_resolution=16, workers=0)
    before = fid_rec(model, db, stand_ins)
    assert sum(seen) == 40
    write_faces(source, seed=1)
    for f in db.iterdir():
        f.unlink()
    build_database(str(source), db, max_resolution=16, workers=0)
    seen.clear()
    after = fid_rec(model, db, stand_ins)
    assert sum(seen) == 40 and after.info["real_statistics"] == "computed" and after.value != before.value


def test_the_key_covers_the_mode_the_resolution_and_the_images(model, faces, stand_ins, seen):
    fid_rec(model, faces, stand_ins)
    for options, reals in [({"mode": "clean"}, 20), ({"lod": 1}, 20), ({"holdout": 12}, 12)]:
        seen.clear()
        result = fid_rec(model, faces, stand_ins, **options)
        assert result.info["real_statistics"] == "computed" and sum(seen) == 2 * reals, options


def test_damaged_or_foreign_cache_files_are_recomputed(model, faces, stand_ins, metrics_cache):
    reference = fid_rec(model, faces, stand_ins)
    (path,) = (metrics_cache / "metrics").glob("real-*.npz")
    path.write_bytes(path.read_bytes()[:3000])  # a torn file
    assert fid_rec(model, faces, stand_ins).info["real_statistics"] == "computed"
    with np.load(path) as data:
        arrays = dict(data)
    np.savez(path, **{**arrays, "key": np.array("another key")})
    assert fid_rec(model, faces, stand_ins).info["real_statistics"] == "computed"
    np.savez(path, **{**arrays, "sigma": arrays["sigma"][:-1]})  # right key, wrong shape
    result = fid_rec(model, faces, stand_ins)
    assert result.info["real_statistics"] == "computed" and result.value == pytest.approx(reference.value, rel=1e-12)
    assert fid_rec(model, faces, stand_ins).info["real_statistics"] == "cached"


def evaluation(model, data, stand_ins):
    return Evaluation(model, data, model.num_lods - 1, 1.0, single_process("cpu"), inception_path=stand_ins[0],
                      mode="legacy_tensorflow", show_progress=False)


def test_features_are_cached_only_when_asked_for_and_then_reused(model, faces, stand_ins, seen):
    stats = real_statistics(evaluation(model, faces, stand_ins), range(15), 16, False, "reals")
    assert stats.features is None and sum(seen) == 15
    seen.clear()
    stats = real_statistics(evaluation(model, faces, stand_ins), range(15), 16, True, "reals")
    assert not stats.cached and stats.features.shape == (15, stand_in.FEATURES) and sum(seen) == 15
    seen.clear()
    cached = real_statistics(evaluation(model, faces, stand_ins), range(15), 16, True, "reals")
    assert cached.cached and sum(seen) == 0
    np.testing.assert_array_equal(cached.features, stats.features)


def test_the_fid_of_a_dataset_against_itself_is_about_zero(model, lfw16, stand_ins):
    stats = real_statistics(evaluation(model, lfw16, stand_ins), range(100), 16, False, "reals")
    network = torch.jit.load(str(stand_ins[0]))
    database = evaluation(model, lfw16, stand_ins).images(16)
    images = torch.stack([database[i] for i in range(100)])
    features = network(images.float(), return_features=True).double().numpy()
    assert abs(frechet_distance(*feature_moments(features), stats.mu, stats.sigma)) < 1e-6
    halves = frechet_distance(*feature_moments(features[:50]), *feature_moments(features[50:]))
    assert halves > 1e-3  # and two different sets are not
