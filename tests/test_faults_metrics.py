"""alae-metrics on a run (tools/metrics.py): the run's own data.holdout is the default holdout
(not a skipped null row), and a metric that cannot be measured is a one-line error."""
import json
import shutil

import pytest

from alae import train
from alae.tools import metrics
from digit_database import write_digit_database
from fault_runs import one_error_line

# A tiny VAE on 30 + 20 digits, 20 held out; 2 steps of 16.
TINY_VAE = ["model.mlp_width=32", "model.latent_dim=4", "train.batch_per_lod=[16]", "data.holdout=20",
            "data.workers=0", "log.grid_size=2", "log.kimg_per_tick=0.032", "log.kimg_per_sample=1", "log.metrics=[]"]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vae_run")
    digits = write_digit_database(folder, train_per_class=3, test_per_class=2)
    assert train.main(["--config", "mnist-vae", "--data", str(digits), "--out", str(folder / "run"), "--kimg", "0.032",
                       "--device", "cpu", *TINY_VAE]) == 0
    return folder / "run", digits


def measure(model, *extra):
    return metrics.main([str(model), "--metrics", "knn1,elbo", "--device", "cpu", "--workers", "0", *extra])


def records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_runs_own_holdout_is_the_default(vae_run, capsys):
    run_dir, digits = vae_run
    assert measure(run_dir) == 0
    default = records(run_dir)
    assert [r["metric"] for r in default] == ["knn1", "elbo"]
    for r in default:
        assert r["value"] is not None and "skipped" not in r and r["holdout"] == 20
    assert default[0]["images"] == {"training": 30, "held_out": 20}
    assert measure(run_dir, "--holdout", "20", "--data", str(digits)) == 0  # the same, given by hand
    explicit = records(run_dir)[2:]
    assert [r["value"] for r in explicit] == [r["value"] for r in default]


def test_without_a_holdout_of_its_own_the_metric_is_an_error_not_a_null_row(vae_run, tmp_path, capsys):
    run_dir, digits = vae_run
    other = shutil.copytree(digits, tmp_path / "other")  # other data: the run's holdout is not assumed
    before = (run_dir / "metrics.jsonl").read_text() if (run_dir / "metrics.jsonl").exists() else ""
    capsys.readouterr()
    assert measure(run_dir, "--data", str(other)) == 1
    line = one_error_line(capsys.readouterr().err, "alae-metrics")
    assert "cannot measure knn1 needs held-out images: pass --holdout N" in line and "; elbo needs held-out" in line
    assert ((run_dir / "metrics.jsonl").read_text() if (run_dir / "metrics.jsonl").exists() else "") == before
