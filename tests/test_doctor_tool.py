"""alae-doctor: one line per item, plain about a missing GPU, the data checked at every resolution
a config trains at, weight files found where the env vars point, the exit status."""
import json
import platform
import re

import pytest
import torch
from host_kernels import CpuBattery, install_stand_ins

from alae import datasets
from alae.config import load_config
from alae.kernels import extension
from alae.tools import doctor

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the report of a machine without a GPU")


@pytest.fixture(autouse=True)
def _empty_cache(tmp_path, monkeypatch):
    """An empty ALAE_CACHE (weights, the demo database) and no weight env vars."""
    monkeypatch.setenv("ALAE_CACHE", str(tmp_path / "cache"))
    for var in ("ALAE_INCEPTION", "ALAE_LPIPS", "ALAE_KERNELS"):
        monkeypatch.delenv(var, raising=False)


def run(capsys, *argv):
    """(exit status, {item name: (mark, text)}, the last line, stderr)."""
    status = doctor.main(list(argv))
    out, err = capsys.readouterr()
    lines = out.splitlines()
    items = {}
    for line in lines[:-1]:
        match = re.match(r"^(ok|--|FAIL|)\s+(.+?)  +(\S.*)$", line)
        if match:
            items[match[2]] = (match[1], match[3])
    return status, items, lines[-1] if lines else "", err


@NO_GPU
def test_says_plainly_that_there_is_no_gpu(capsys):
    status, items, last, _ = run(capsys)
    assert status == 0 and last == "alae-doctor: everything needed is present"
    assert items["python"][1].startswith(platform.python_version())
    assert items["torch"][1].startswith(f"{torch.__version__}, built with CUDA {torch.version.cuda}")
    assert items["CUDA"][0] == "--" and items["CUDA"][1].startswith("not available: no CUDA GPU")
    assert items["kernels"] == ("--", "no CUDA GPU: kernels not built, the reference ops will be used")
    assert items["self-test"] == ("--", "no CUDA GPU, not run")
    assert not any(name.startswith("GPU ") for name in items)
    for name in ("nvcc", "ninja", "lmdb", "clean-fid", "dlib", "inception weights", "lpips weights",
                 "dlib 68-point model"):
        assert name in items
    status, items, last, _ = run(capsys, "--require", "gpu,kernels")
    assert status == 1 and items["CUDA"][0] == items["kernels"][0] == "FAIL"
    assert last.startswith("alae-doctor: 3 needed item(s) missing or failing: CUDA, kernels, self-test")


@NO_GPU
def test_the_demo_config_with_the_lfw_faces(capsys):
    status, items, last, _ = run(capsys, "--config", "demo", "--data", "lfw")
    assert status == 0, items
    for px in (4, 8, 16, 32):
        assert items[f"data {px} px"] == ("ok", "opens: 100 images")
    assert "data 64 px" not in items and "data 2 px" not in items
    assert items["data images"] == ("ok", "100 = 92 for training + 8 held out (data.holdout); the largest global "
                                          "batch is 16")
    assert items["config"][0] == "ok" and items["config"][1].startswith("demo: 32 px (4 lods)")
    assert items["memory per lod"] == ("", "no GPU, not measured")


def test_a_bad_data_path_fails_naming_it(capsys, tmp_path):
    missing = tmp_path / "no-such-database"
    status, items, last, _ = run(capsys, "--config", "demo", "--data", str(missing))
    assert status == 1
    assert items["data"][0] == "FAIL" and str(missing) in items["data"][1]
    assert last == "alae-doctor: 1 needed item(s) missing or failing: data"


def test_data_without_a_resolution_the_config_needs_fails_at_that_resolution(capsys, tmp_path):
    small = datasets.ensure_lfw_database(tmp_path / "db", max_res=16)
    status, items, _, _ = run(capsys, "--config", "demo", "--data", str(small))
    assert status == 1
    assert [items[f"data {px} px"][0] for px in (4, 8, 16, 32)] == ["ok", "ok", "ok", "FAIL"]
    assert "does not store resolution 32" in items["data 32 px"][1]
    status, _, _, _ = run(capsys, "--config", "demo", "--data", str(small), "model.resolution=16",
                          "model.channels=[64,64,32]", "train.batch_per_lod=[16,16,16]",
                          "train.lr_per_lod=[0.003,0.003,0.003]")
    assert status == 0


@pytest.mark.parametrize("config, message", [("no-such-config", "no config named 'no-such-config'"),
                                             ("bad.yaml", "not valid YAML")])
def test_an_unreadable_config_fails(capsys, tmp_path, monkeypatch, config, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    status, items, _, _ = run(capsys, "--config", config)
    assert status == 1 and items["config"][0] == "FAIL" and message in items["config"][1]


def test_weight_files_follow_the_env_vars(capsys, tmp_path, monkeypatch):
    inception = tmp_path / "my-inception.pt"
    inception.write_bytes(b"stand-in")
    monkeypatch.setenv("ALAE_INCEPTION", str(inception))
    status, items, _, _ = run(capsys, "--require", "inception")
    assert status == 0 and items["inception weights"] == ("ok", str(inception))
    mark, text = items["lpips weights"]
    assert mark == "--" and f"put vgg16.pt (from {doctor.LPIPS.url}) at {tmp_path / 'cache' / 'vgg16.pt'}" in text
    status, items, _, _ = run(capsys, "--require", "lpips")
    assert status == 1 and items["lpips weights"][0] == "FAIL"
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "vgg16.pt").write_bytes(b"stand-in")
    status, items, _, _ = run(capsys, "--require", "lpips")
    assert status == 0 and items["lpips weights"] == ("ok", str(tmp_path / "cache" / "vgg16.pt"))


def test_json_is_the_same_report(capsys):
    _, items, _, _ = run(capsys, "--config", "demo", "--data", "lfw")
    assert doctor.main(["--config", "demo", "--data", "lfw", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["exit_status"] == 0
    assert {i["name"]: (doctor.MARKS[i["status"]], i["text"]) for i in report["items"]} == items


@pytest.mark.parametrize("argv, message", [
    (["--require", "gpu,tpu"], "--require: unknown tpu; choose from gpu, kernels, inception, lpips, dlib"),
    (["--data", "lfw"], "--data needs --config"),
])
def test_bad_arguments_are_one_line_errors(capsys, argv, message):
    assert doctor.main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_memory_per_lod_takes_one_step_per_lod_at_one_gpus_share():
    cfg = load_config("demo", ["model.resolution=8", "model.channels=[8,8]", "model.latent_dim=8",
                               "model.mapping_layers=1", "train.batch_per_lod=[8,4]", "train.lr_per_lod=[0.003,0.003]"])
    rows = doctor.memory_per_lod(cfg, torch.device("cpu"), world_size=2)
    assert [row[:3] for row in rows] == [(0, 4, 0), (1, 2, 0)]  # no CUDA peak on the CPU
    assert all(row[3] > 0 for row in rows)


def test_on_a_gpu_it_reports_the_build_and_the_self_test_run_then_recorded(
        tmp_path, monkeypatch, host_upfirdn2d, host_bias_act):
    """The GPU branch on the stand-ins: a trivial build in a temporary cache, the real battery."""
    install_stand_ins(monkeypatch, host_upfirdn2d, host_bias_act)
    src = tmp_path / "trivial.cpp"
    src.write_text('extern "C" int alae_trivial_answer() { return 42; }\n')
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    monkeypatch.setattr(extension, "gpu_name", lambda device: "Stand-in GPU (sm_00)")
    battery = CpuBattery()
    monkeypatch.setattr(extension, "KERNELS", extension.Extension("alae_doctor_trivial", [str(src)], selftest=battery))
    first = doctor.kernel_items(gpu_count=2, compile_without_gpu=False)  # two GPUs of one model: one test
    assert [i.name for i in first] == ["kernels", "self-test upfirdn2d", "self-test bias_act"]
    assert first[0].ok and first[0].text.startswith("built now in")
    assert all(i.ok and i.text.endswith("[Stand-in GPU (sm_00), run now]") and i.text.startswith("passed")
               for i in first[1:])
    monkeypatch.setattr(extension, "KERNELS", extension.Extension("alae_doctor_trivial", [str(src)], selftest=battery))
    again = doctor.kernel_items(gpu_count=1, compile_without_gpu=False)
    assert again[0].text.startswith("found in the cache")
    assert all(i.text.endswith("[Stand-in GPU (sm_00), recorded]") for i in again[1:])
    assert battery.runs == 1


@NO_GPU
def test_acceptance_without_a_gpu_runs_the_parts_that_need_none(capsys, tmp_path, monkeypatch):
    import alae.acceptance.run as acceptance_run

    monkeypatch.setattr(acceptance_run, "LOADER_PX", 32)  # the loader part at 32 px keeps the test short
    status = doctor.main(["--acceptance", "--out", str(tmp_path / "acc"), "--budget-s", "120"])
    out = capsys.readouterr().out.splitlines()
    assert status == 0
    assert out[0] == ("alae-doctor: no CUDA GPU: running the parts that need none (1 and 7); the others are listed "
                      "as skipped")
    report = json.loads((tmp_path / "acc" / "report.json").read_text())
    statuses = {p["number"]: (p["status"], p["summary"]) for p in report["parts"]}
    assert statuses[1][0] == "passed" and statuses[7][0] == "measured"
    assert all(statuses[n] == ("skipped", "no CUDA GPU") for n in range(2, 7))
    loader = next(p for p in report["parts"] if p["number"] == 7)
    assert loader["columns"][:2] == ["workers", "loader img/s"] and all(row[1] > 0 for row in loader["rows"])
    markdown = (tmp_path / "acc" / "report.md").read_text()
    assert all(f"## {n}. " in markdown for n in range(1, 8)) and "| machine | |" in markdown
    assert report["exit_status"] == 0 and out[-1].startswith("alae-doctor: no check failed")


def test_acceptance_takes_only_its_own_options(capsys):
    assert doctor.main(["--acceptance", "--config", "demo"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("alae-doctor: error: --acceptance takes only --out and --budget-s (it chooses its configs "
                           "and data)")
