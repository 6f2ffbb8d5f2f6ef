"""alae-metrics end to end: metrics.jsonl lines, where they go, printed results, one-line errors
(unknown metric, missing data, missing weights offline), python -m."""
import hashlib
import json
import shutil
import subprocess
import sys
import urllib.error

import inception_stand_in as stand_in
import pytest
import torch

from alae.metrics import inception
from alae.metrics.weight_files import INCEPTION_URL, LPIPS_URL
from alae.tools import metrics

metrics_cache, stand_ins, lfw16 = stand_in.metrics_cache, stand_in.stand_ins, stand_in.lfw16  # pytest fixtures


def run(model, *extra):
    return metrics.main([str(model), "--device", "cpu", "--workers", "0", *map(str, extra)])


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_metrics_jsonl_holds_one_line_per_metric(tiny_model, lfw16, stand_ins, tmp_path, capsys):
    names = "mse_rec,fid_rec1k,lpips_rec1k"
    assert run(tiny_model, "--data", lfw16, "--metrics", names, "--holdout", 20, "--out", tmp_path / "run",
               "--inception", stand_ins[0], "--lpips", stand_ins[1], "--mode", "legacy_tensorflow") == 0
    lines = records(tmp_path / "run" / "metrics.jsonl")
    assert [r["metric"] for r in lines] == names.split(",")
    mse, fid_rec, lpips_rec = lines
    for r in (mse, fid_rec, lpips_rec):
        assert r["value"] > 0 and r["model"] == str(tiny_model) and r["kimg"] is None and r["seconds"] >= 0
        assert (r["resolution"], r["lod"], r["alpha"], r["seed"], r["world_size"], r["holdout"]) == (16, 2, 1.0, 0, 1, 20)
    assert mse["images"] == lpips_rec["images"] == {"reconstructed": 20}
    assert fid_rec["images"] == {"real": 20, "reconstructed": 20} and fid_rec["mode"] == "legacy_tensorflow"
    assert fid_rec["feature_network"] == {"file": "inception-2015-12-05.pt", "path": str(stand_ins[0]),
                                          "sha256": hashlib.sha256(stand_ins[0].read_bytes()).hexdigest()}
    assert lpips_rec["lpips"] == str(stand_ins[1]) and "mode" not in mse
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in out[:3]] == names.split(",") and len(out) == 4
    assert out[0].startswith(f"alae-metrics: mse_rec {mse['value']:.6g} (20 reconstructed; ")
    assert out[3] == f"alae-metrics: -> {tmp_path / 'run' / 'metrics.jsonl'}"
    # A metric the model cannot give (PPL's face crop needs 32 px) is an error, not a row without a value.
    assert run(tiny_model, "--data", lfw16, "--metrics", "mse_rec,ppl_wend", "--holdout", 20, "--out",
               tmp_path / "run", "--lpips", stand_ins[1]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("alae-metrics: error: cannot measure ppl_wend needs images of "
                                                   "at least 32 px; the networks run at 16 px")
    assert len(records(tmp_path / "run" / "metrics.jsonl")) == 3  # nothing appended, not even mse_rec
    assert run(tiny_model, "--data", lfw16, "--metrics", "mse_rec", "--holdout", 5, "--out", tmp_path / "run") == 0
    assert [r["metric"] for r in records(tmp_path / "run" / "metrics.jsonl")] == [*names.split(","), "mse_rec"]  # appended


def test_results_go_to_the_models_run_directory_or_are_only_printed(tiny_model, lfw16, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "tiny"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("name: tiny\n")
    shutil.copy(tiny_model, run_dir / "checkpoints" / "latest.pt")
    shutil.copy(tiny_model, run_dir / "checkpoints" / "snapshot-0000002.0kimg.pt")
    assert run(run_dir, "--data", lfw16, "--metrics", "mse_rec", "--holdout", 5) == 0
    assert run(run_dir / "checkpoints" / "snapshot-0000002.0kimg.pt", "--data", lfw16, "--metrics", "mse_rec",
               "--holdout", 5) == 0
    lines = records(run_dir / "metrics.jsonl")
    assert [r["model"] for r in lines] == [str(run_dir / "checkpoints" / n) for n in
                                           ("latest.pt", "snapshot-0000002.0kimg.pt")]
    assert lines[0]["value"] == pytest.approx(lines[1]["value"], rel=1e-9)
    capsys.readouterr()
    assert run(tiny_model, "--data", lfw16, "--metrics", "mse_rec", "--holdout", 5) == 0
    assert "results not recorded (pass --out RUN" in capsys.readouterr().out
    assert not (tiny_model.parent / "metrics.jsonl").exists()


def offline(fpath):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_offline_without_inception_weights_the_tool_says_which_file_from_where_to_where(
        tiny_model, lfw16, metrics_cache, monkeypatch, capsys):
    monkeypatch.setattr(inception, "check_download_inception", offline)
    assert run(tiny_model, "--data", lfw16, "--metrics", "fid1k") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("alae-metrics: error: Inception (FID, KID) weights not found")
    assert "inception-2015-12-05.pt" in err and INCEPTION_URL in err
    assert str(metrics_cache / "inception-2015-12-05.pt") in err


@pytest.mark.parametrize("extra, message", [
    (["--metrics", "fid50k,fid_50k"], "unknown metric 'fid_50k'; valid forms: fid{N}k, fid{N}k_full, "),
    (["--metrics", "mse_rec", "--data", "/nonexistent/db"], "data path does not exist: /nonexistent/db"),
    (["--metrics", "lpips_rec1k"], f"LPIPS VGG16 (PPL, reconstruction LPIPS) weights not found: put vgg16.pt "
                                   f"(from {LPIPS_URL}) at "),
    (["--metrics", "ppl_wend", "--lpips", "/nonexistent/vgg16.pt"], "/nonexistent/vgg16.pt does not exist"),
    (["--metrics", "mse_rec", "--holdout", "0"], "--holdout must be at least 1"),
    (["--metrics", "mse_rec", "--holdout", "500"], "holdout 500 is not between 1 and the 100 images"),
])
def test_bad_input_is_one_line_error(tiny_model, lfw16, capsys, extra, message):
    extra = extra if "--data" in extra else [*extra, "--data", str(lfw16)]
    assert run(tiny_model, *extra) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("alae-metrics: error: ")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_without_a_gpu_is_one_line_error(tiny_model, lfw16, capsys):
    assert metrics.main([str(tiny_model), "--data", str(lfw16), "--metrics", "mse_rec", "--device", "cuda"]) == 1
    assert "no CUDA device is available" in capsys.readouterr().err


def test_python_dash_m_runs_the_tool():
    done = subprocess.run([sys.executable, "-m", "alae.tools.metrics", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--inception" in done.stdout and "legacy_tensorflow" in done.stdout


def test_unusable_weights_fail_before_any_metric_runs(tiny_model, lfw16, stand_ins, tmp_path, capsys, metrics_cache):
    (tmp_path / "vgg16.pt").write_bytes(b"not weights")
    assert run(tiny_model, "--data", lfw16, "--metrics", "fid_rec1k,lpips_rec1k", "--inception", stand_ins[0],
               "--lpips", tmp_path / "vgg16.pt", "--out", tmp_path / "run") == 1
    captured = capsys.readouterr()
    assert "vgg16.pt: neither a TorchScript archive" in captured.err and captured.err.count("\n") == 1
    assert not list((metrics_cache / "metrics").glob("real-*.npz"))  # fid_rec1k did not start
