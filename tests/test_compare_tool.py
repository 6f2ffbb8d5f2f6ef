"""alae-compare end to end on tiny MLP models and the embedded digits: two configs × two seeds,
report.md with one row per system (mean ± std) and report.png; a rerun keeps the finished runs
and trains again only the missing or interrupted ones; a run directory is read, not trained;
user errors are one line before anything trains."""
import json
import re

import pytest
from PIL import Image

from alae.config import load_config, save_config
from alae.datasets import ensure_mnist_database
from alae.family.runs import TRAINED_MARKER
from alae.tools import compare

CONFIGS = ("mnist-vae", "mnist-aae-cluster")
# As tests/test_family_training.py's TINY: batch 16, ticks of 32 images, so --kimg 0.064 is 4 steps.
TINY = ["model.mlp_width=32", "model.latent_dim=4", "model.discriminator_width=16", "train.batch_per_lod=[16]",
        "data.holdout=20", "data.workers=0", "log.grid_size=2", "log.kimg_per_tick=0.032", "log.kimg_per_sample=1",
        "log.kimg_per_checkpoint=1"]
METRICS = "knn1,linear_svm,class_error,mse_rec,elbo"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "alae-family-cache"
    ensure_mnist_database(path)
    return path


@pytest.fixture(autouse=True)
def private_cache(cache, monkeypatch):
    monkeypatch.setenv("ALAE_CACHE", str(cache))


def run_compare(out, *inputs, metrics=METRICS, seeds=2, kimg=0.064):
    return compare.main([*inputs, "--out", str(out), "--seeds", str(seeds), "--kimg", str(kimg), "--device", "cpu",
                         "--metrics", metrics, *TINY])


@pytest.fixture(scope="module")
def compared(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as m:
        m.setenv("ALAE_CACHE", str(cache))
        assert run_compare(out, *CONFIGS) == 0
    return out


def table_rows(report, header_start):
    lines = report.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[first + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return lines[first], rows


def checkpoint_times(out):
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in (out / "runs").glob("*/checkpoints/*.pt")}


def test_report_has_one_row_per_system_with_mean_and_std(compared):
    report = (compared / "report.md").read_text()
    header, rows = table_rows(report, "| system |")
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns == ["system", "seeds", "wall time", *METRICS.split(",")]
    assert [row[0] for row in rows] == list(CONFIGS)
    for row in rows:
        cells = dict(zip(columns, row))
        assert cells["seeds"] == "0, 1"
        assert " ± " in cells["knn1"] and " ± " in cells["mse_rec"]
        assert re.fullmatch(r"[0-9.]+ s ± [0-9.]+", cells["wall time"])
    vae, cluster = (dict(zip(columns, row)) for row in rows)
    assert vae["class_error"].startswith("—") and cluster["elbo"].startswith("—")  # undefined: footnoted
    assert " ± " in vae["elbo"] and " ± " in cluster["class_error"]
    assert "needs a model with a class head" in report and "needs a VAE" in report
    _, baselines = table_rows(report, "| baseline |")
    assert [row[0] for row in baselines] == ["pixels", "PCA-4 codes", "k-means 16", "RBF SVM, 100 labels"]
    assert "60,000 training / 10,000 test" in report and "4980 training digits and the last 20 held out" in report
    results = json.loads((compared / "results.json").read_text())
    assert sorted((r["system"], r["seed"]) for r in results["runs"]) == sorted(
        (c, s) for c in CONFIGS for s in (0, 1))


def test_report_png_has_a_row_per_system(compared):
    with Image.open(compared / "report.png") as image:
        width, height = image.size
    assert height > width / 3 * 1.5  # two rows of three square-ish panels
    assert all((compared / "figures" / f"{name}-{kind}.png").is_file() for name in CONFIGS
               for kind in ("codes", "losses"))


def test_rerun_trains_only_missing_and_interrupted_runs(compared):
    import shutil

    before = checkpoint_times(compared)
    shutil.rmtree(compared / "runs" / "mnist-vae-seed1")  # lost
    (compared / "runs" / "mnist-aae-cluster-seed0" / TRAINED_MARKER).unlink()  # stopped before its marker
    assert run_compare(compared, *CONFIGS) == 0
    after = checkpoint_times(compared)
    kept = [k for k in before if k.startswith(("runs/mnist-vae-seed0/", "runs/mnist-aae-cluster-seed1/"))]
    assert kept and all(after[k] == before[k] for k in kept)
    retrained = [k for k in after if k.startswith(("runs/mnist-vae-seed1/", "runs/mnist-aae-cluster-seed0/"))]
    assert {k.split("/")[1] for k in retrained} == {"mnist-vae-seed1", "mnist-aae-cluster-seed0"} and all(k not in before or after[k] != before[k] for k in retrained)
    assert all((compared / "runs" / f"{c}-seed{s}" / TRAINED_MARKER).is_file() for c in CONFIGS for s in (0, 1))


def test_a_finished_run_of_other_settings_is_a_one_line_error(compared, capsys):
    assert run_compare(compared, *CONFIGS, kimg=0.032) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was trained with other settings (train differ" in err[-1]


def test_a_run_directory_is_read_not_trained(compared, tmp_path, monkeypatch):
    def no_training(*args):
        raise AssertionError("a read run was trained")

    monkeypatch.setattr(compare, "train_run", no_training)
    assert run_compare(tmp_path / "read", str(compared / "runs" / "mnist-vae-seed0"), metrics="knn1") == 0
    _, rows = table_rows((tmp_path / "read" / "report.md").read_text(), "| system |")
    assert rows[0][:2] == ["mnist-vae", "0"]
    assert rows[0][2].endswith(" s")  # the wall time its earlier alae-compare recorded (TRAINED_MARKER)


@pytest.mark.parametrize("case, inputs, extra, message", [
    ("config", ["mnist-nope"], [], "mnist-nope"),
    ("metric", ["mnist-vae"], ["--metrics", "knn1,nope"], "unknown metric 'nope'"),
    ("dataset", ["mnist-vae", "OTHER_RUN"], [], "a comparison needs one database and split"),
])
def test_user_errors_are_one_line(case, inputs, extra, message, tmp_path, capsys, monkeypatch):
    def no_training(*args):
        raise AssertionError("trained despite the error")

    monkeypatch.setattr(compare, "train_run", no_training)
    other = tmp_path / "other-run"
    cfg = load_config("mnist-vae", [f"data.path={tmp_path}"])  # an existing folder standing for another database
    other.mkdir()
    save_config(cfg, other / "config.yaml")
    inputs = [str(other) if i == "OTHER_RUN" else i for i in inputs]
    assert compare.main([*inputs, "--out", str(tmp_path / "out"), "--device", "cpu", *extra, *TINY]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("alae-compare: error:") and message in err[0]


def test_refuses_an_output_folder_of_something_else(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert compare.main(["mnist-vae", "--out", str(tmp_path), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not an earlier alae-compare output" in err[0]
    assert (tmp_path / "notes.txt").read_text() == "mine"
