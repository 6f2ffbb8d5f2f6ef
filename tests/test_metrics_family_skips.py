"""alae-metrics with the code, likelihood and digit metrics end to end: each metric a model or a
database cannot give comes back skipped with one line saying why (printed and in metrics.jsonl),
the others are measured; bad names are one-line errors."""
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
    return status, {r["metric"]: r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}


def test_a_wae_has_no_elbo_but_codes_and_samples(digits, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ALAE_CACHE", str(tmp_path / "cache"))
    model = write_family_model(tmp_path / "wae.pt", "wae")
    status, rows = run(model, digits, "elbo,elbo_iw8,knn1,linear_svm,parzen_ll1k,fd_digits1k", tmp_path / "run",
                       "--holdout", "20")
    assert status == 0
    for name in ("elbo", "elbo_iw8"):
        assert rows[name]["value"] is None
        assert rows[name]["skipped"] == "needs a VAE (a Gaussian posterior and a likelihood); this model is wae_mmd"
    for name in ("knn1", "linear_svm"):
        assert 0 <= rows[name]["value"] <= 1 and rows[name]["images"] == {"training": 30, "held_out": 20}
    assert rows["parzen_ll1k"]["value"] < 0 and rows["fd_digits1k"]["value"] > 0
    out = capsys.readouterr().out
    assert "alae-metrics: elbo skipped: needs a VAE (a Gaussian posterior and a likelihood); this model is wae_mmd\n" in out


def test_a_vae_without_a_holdout_skips_what_needs_held_out_images(digits, tmp_path):
    model = write_family_model(tmp_path / "vae.pt", "vae")
    status, rows = run(model, digits, "elbo,elbo_iw,knn1,parzen_ll", tmp_path / "run")
    assert status == 0
    for row in rows.values():
        assert row["value"] is None
        assert row["skipped"] == "needs held-out images: pass --holdout N (training passes data.holdout)"


def test_without_labels_the_classifier_metrics_are_skipped(tiny_model, lfw16, tmp_path):
    status, rows = run(tiny_model, lfw16, "knn1,linear_svm,fd_digits1k,elbo", tmp_path / "run", "--holdout", "20")
    assert status == 0
    for name in ("knn1", "linear_svm"):
        assert rows[name]["skipped"] == f"needs class labels, and {lfw16} has none (MNIST databases have them)"
    assert rows["fd_digits1k"]["skipped"].startswith("needs class labels to train its digit classifier")
    assert rows["elbo"]["skipped"] == "needs a VAE (a Gaussian posterior and a likelihood); this model is alae"


@pytest.mark.parametrize("name", ["elbo_iw0", "knn1k", "fd_digits", "parzen_ll0k"])
def test_malformed_names_are_one_line_errors(name, digits, tmp_path, capsys):
    model = write_family_model(tmp_path / "vae.pt", "vae")
    assert metrics.main([str(model), "--data", str(digits), "--metrics", name, "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"unknown metric {name!r}" in err and "elbo_iw{N}" in err


def test_training_accepts_them_in_log_metrics_without_weight_files(metrics_cache):
    check_training_metrics(["knn1", "linear_svm", "parzen_ll", "parzen_ll10k", "elbo", "elbo_iw", "elbo_iw64",
                            "fd_digits10k"])  # no ConfigError: none needs Inception or LPIPS
