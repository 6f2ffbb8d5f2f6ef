"""alae-metrics with the code, likelihood and digit metrics end to end: a metric a model or a
database cannot give is a one-line error naming it and why, before anything is measured or
recorded; the others are measured; bad names are one-line errors."""
import json

import inception_stand_in as stand_in
import pytest

from alae.tools import metrics
from alae.training.metrics import check_training_metrics
from digit_database import write_digit_database, write_family_model

lfw16, metrics_cache = stand_in.lfw16, stand_in.metrics_cache  # pytest fixtures; lfw16 has no labels


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digit_database(tmp_path_factory.mktemp("digits"), train_per_class=3, test_per_class=2)


def run(model, data, names, out, *extra):
    status = metrics.main([str(model), "--data", str(data), "--metrics", names, "--out", str(out),
                           "--device", "cpu", "--workers", "0", *extra])
    path = out / "metrics.jsonl"
    return status, {r["metric"]: r for r in map(json.loads, path.read_text().splitlines())} if path.exists() else {}


def refusal(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("alae-metrics: error: cannot measure "), err
    return err


def test_a_wae_has_no_elbo_but_codes_and_samples(digits, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ALAE_CACHE", str(tmp_path / "cache"))
    model = write_family_model(tmp_path / "wae.pt", "wae")
    status, rows = run(model, digits, "knn1,linear_svm,parzen_ll1k,fd_digits1k", tmp_path / "run", "--holdout", "20")
    assert status == 0
    for name in ("knn1", "linear_svm"):
        assert 0 <= rows[name]["value"] <= 1 and rows[name]["images"] == {"training": 30, "held_out": 20}
    assert rows["parzen_ll1k"]["value"] < 0 and rows["fd_digits1k"]["value"] > 0
    capsys.readouterr()
    status, after = run(model, digits, "elbo,elbo_iw8,knn1", tmp_path / "run", "--holdout", "20")
    assert status == 1 and after == rows  # nothing measured, nothing recorded
    reason = "needs a VAE (a Gaussian posterior and a likelihood); this model is wae_mmd"
    assert f"cannot measure elbo {reason}; elbo_iw8 {reason}\n" in refusal(capsys)


def test_a_vae_without_a_holdout_cannot_measure_what_needs_held_out_images(digits, tmp_path, capsys):
    model = write_family_model(tmp_path / "vae.pt", "vae")  # networks only: no run's data.holdout to default to
    status, rows = run(model, digits, "elbo,elbo_iw,knn1,parzen_ll", tmp_path / "run")
    assert status == 1 and rows == {}
    err = refusal(capsys)
    for name in ("elbo", "elbo_iw", "knn1", "parzen_ll"):
        assert f"{name} needs held-out images: pass --holdout N (training passes data.holdout)" in err


def test_without_labels_the_classifier_metrics_cannot_be_measured(tiny_model, lfw16, tmp_path, capsys):
    status, rows = run(tiny_model, lfw16, "knn1,linear_svm,fd_digits1k,elbo", tmp_path / "run", "--holdout", "20")
    assert status == 1 and rows == {}
    err = refusal(capsys)
    for name in ("knn1", "linear_svm"):
        assert f"{name} needs class labels, and {lfw16} has none (MNIST databases have them)" in err
    assert "fd_digits1k needs class labels to train its digit classifier" in err
    assert "elbo needs a VAE (a Gaussian posterior and a likelihood); this model is alae" in err


@pytest.mark.parametrize("name", ["elbo_iw0", "knn1k", "fd_digits", "parzen_ll0k"])
def test_malformed_names_are_one_line_errors(name, digits, tmp_path, capsys):
    model = write_family_model(tmp_path / "vae.pt", "vae")
    assert metrics.main([str(model), "--data", str(digits), "--metrics", name, "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"unknown metric {name!r}" in err and "elbo_iw{N}" in err


def test_training_accepts_them_in_log_metrics_without_weight_files(metrics_cache):
    check_training_metrics(["knn1", "linear_svm", "parzen_ll", "parzen_ll10k", "elbo", "elbo_iw", "elbo_iw64",
                            "fd_digits10k"])  # no ConfigError: none needs Inception or LPIPS
