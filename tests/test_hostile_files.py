"""Hostile files through every reader: nothing runs, and each is one line naming the file and
what was refused, exit status 1.

Readers: alae-convert, every tool's MODEL, alae-train --resume (a run's latest.pt) and --init,
alae-edit --direction, alae-directions import, and alae.load_model. The battery is built in
`hostile_files.py`; the control test shows that plain unpickling of each file does run it.
"""
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import astronaut

import alae
from alae import train
from alae.model_files.checkpoint import CheckpointError
from alae.tools import convert, directions, edit, generate, interpolate, metrics, mix, reconstruct
from hostile_files import lying_safetensors, model_files, object_directions

MODEL_FILES = ["global_reduce", "stack_global_reduce", "inst", "obj", "build", "legacy", "zip", "swapped_data_pkl"]
TRAIN = ["--config", "demo", "--kimg", "0.016", "--device", "cpu", "data.workers=0"]


@pytest.fixture(scope="module")
def battery(tmp_path_factory, tiny_model):
    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "code-ran"
    safetensors = folder / "valid.safetensors"
    assert convert.main([str(tiny_model), str(safetensors)]) == 0
    return {"marker": marker, "models": model_files(folder / "models", marker, tiny_model),
            "safetensors": lying_safetensors(folder, safetensors), "directions": object_directions(folder, marker)}


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "face.png"
    Image.fromarray(np.ascontiguousarray(astronaut()[0:256, 100:356])).save(path)
    return path


@pytest.fixture(scope="module")
def good_direction(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("direction") / "pc"
    assert directions.main(["pca", str(tiny_model), "--num", "1", "--samples", "200", "--scale-samples", "200",
                            "--out", str(out), "--device", "cpu"]) == 0
    return next(out.glob("*.npz"))


def model_readers(model, out, photo, direction):
    """(name, call) for every command line that takes a model file."""
    m, o, cpu = str(model), str(out), ["--device", "cpu"]
    return [
        ("alae-convert", lambda: convert.main([m, o + ".safetensors"])),
        ("alae-generate", lambda: generate.main([m, "--seeds", "0", "--out", o, *cpu])),
        ("alae-reconstruct", lambda: reconstruct.main([m, str(photo), "--out", o, *cpu])),
        ("alae-mix", lambda: mix.main([m, "--rows", "0", "--cols", "1", "--out", o, *cpu])),
        ("alae-interpolate", lambda: interpolate.main([m, "0", "1", "--out", o, *cpu])),
        ("alae-edit", lambda: edit.main([m, str(photo), "--direction", str(direction), "--out", o, *cpu])),
        ("alae-directions pca", lambda: directions.main(["pca", m, "--samples", "100", "--out", o, *cpu])),
        ("alae-directions sefa", lambda: directions.main(["sefa", m, "--out", o, *cpu])),
        ("alae-metrics", lambda: metrics.main([m, "--metrics", "mse_rec", "--data", "lfw", *cpu])),
        ("alae-train --init", lambda: train.main([*TRAIN, "--out", o, "--init", m])),
        ("alae-train --resume", lambda: train.main([*TRAIN, "--out", o, "--resume", m])),
    ]


def assert_one_line_refusal(capsys, status, path, reason):
    err = capsys.readouterr().err.strip()
    assert status == 1, err
    assert "\n" not in err and "Traceback" not in err, err
    assert str(path) in err and reason in err, err


@pytest.mark.parametrize("kind", MODEL_FILES)
def test_hostile_model_files_run_nothing_in_any_reader(battery, kind, photo, good_direction, tmp_path, capsys):
    path, refused = battery["models"][kind]
    for name, call in model_readers(path, tmp_path / "out", photo, good_direction):
        status = call()
        assert not battery["marker"].exists(), f"{name} ran code from {kind}"
        assert_one_line_refusal(capsys, status, path, f"the global {refused}")
        assert not (tmp_path / "out.safetensors").exists()
    with pytest.raises(CheckpointError, match=f"refused {path}: it pickles the global {refused}"):
        alae.load_model(path, device="cpu")


@pytest.mark.parametrize("kind", MODEL_FILES)
def test_a_resumed_run_whose_latest_checkpoint_is_hostile_stops_with_one_line(battery, kind, tmp_path, capsys):
    path, refused = battery["models"][kind]
    latest = tmp_path / "run" / "checkpoints" / "latest.pt"
    latest.parent.mkdir(parents=True)
    shutil.copy(path, latest)
    status = train.main([*TRAIN, "--out", str(tmp_path / "run"), "--resume", "auto"])
    assert not battery["marker"].exists()
    assert_one_line_refusal(capsys, status, latest, f"the global {refused}")


@pytest.mark.parametrize("kind", MODEL_FILES)
def test_the_control_plain_torch_load_runs_each_file(battery, kind):
    """The battery is hostile: torch.load(weights_only=False) runs every file's command."""
    path, _ = battery["models"][kind]
    battery["marker"].unlink(missing_ok=True)
    try:
        torch.load(path, weights_only=False)
    except Exception:  # a bare pickle has no torch header after the payload ran
        pass
    assert battery["marker"].exists()
    battery["marker"].unlink()


@pytest.mark.parametrize("lie", ["offsets_past_the_end", "shape_not_its_bytes"])
def test_safetensors_whose_header_lies_are_one_line_errors(battery, lie, photo, good_direction, tmp_path, capsys):
    path = battery["safetensors"][lie]
    for name, call in model_readers(path, tmp_path / "out", photo, good_direction):
        status = call()
        err = capsys.readouterr().err.strip()
        assert status == 1 and "\n" not in err and "Traceback" not in err, f"{name}: {err}"
        assert f"cannot read model file {path}" in err, f"{name}: {err}"


def test_direction_files_holding_objects_are_refused(battery, tiny_model, photo, tmp_path, capsys):
    files = battery["directions"]
    status = edit.main([str(tiny_model), str(photo), "--direction", str(files["npz"]), "--out", str(tmp_path / "e"),
                        "--device", "cpu"])
    assert_one_line_refusal(capsys, status, files["npz"], "allow_pickle=False")
    status = directions.main(["import", str(files["npy"]), "--model", str(tiny_model), "--out", str(tmp_path / "d.npz"),
                              "--device", "cpu"])
    assert_one_line_refusal(capsys, status, files["npy"], "allow_pickle=False")
    assert not battery["marker"].exists()
    np.load(files["npy"], allow_pickle=True)  # the control: unpickling the array runs it
    assert battery["marker"].exists()
    battery["marker"].unlink()
