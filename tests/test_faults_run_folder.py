"""Faults of a run folder and of tools' output folders (alae.run_folder, alae.cli): a second
alae-train into a busy folder, a new run over a run, a folder of something else, a file in the
way, a read-only file system, a device that is not there. Each ends in one line, never a
traceback, and nothing is written where the command was refused."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from alae.model_files.checkpoint import load_checkpoint
from alae.run_folder import LOCK_FILE
from alae.tools import generate, metrics
from fault_runs import demo_cache, finish, one_error_line, private_mount_prefix, run, start, wait_for_ticks  # noqa: F401
from test_torchrun import env, output, torchrun, train_args  # noqa: F401  (env: a pytest fixture)


def test_a_second_run_into_a_busy_folder_is_refused_at_once_and_a_killed_run_does_not_block(tmp_path, capsys):
    first = start(tmp_path, 1000)  # trains until it is killed
    try:
        wait_for_ticks(first, tmp_path, 1)
        for resume in (None, "auto"):  # a second new run, and a relaunch with --resume auto
            begin = time.perf_counter()
            assert run(tmp_path, 0.016, resume=resume) == 1
            line = one_error_line(capsys.readouterr().err)
            assert time.perf_counter() - begin < 10, "refused only after loading the run"
            assert f"--out {tmp_path} is in use by another alae-train (pid {first.pid} on {socket.gethostname()}" in line
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGKILL)  # no chance to clean up: the kernel drops its lock
        finish(first)
    assert run(tmp_path, 0.016, resume="auto") == 0
    assert f"pid {os.getpid()} on {socket.gethostname()}" in (tmp_path / LOCK_FILE).read_text()


def test_a_new_run_over_a_run_is_refused_pointing_at_resume(tmp_path, capsys):
    assert run(tmp_path, 0.024) == 0
    before = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    log = (tmp_path / "log.txt").read_text()
    capsys.readouterr()
    assert run(tmp_path, 0.016) == 1
    line = one_error_line(capsys.readouterr().err)
    assert f"--out {tmp_path} holds a run with checkpoints; continue it with `alae-train --out {tmp_path} " \
           f"--resume auto`, or choose a new --out" in line
    after = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    assert after["progress"] == before["progress"] and after["progress"]["images_seen"] == 24
    assert (tmp_path / "log.txt").read_text() == log  # nothing written, not even to the log


def test_a_folder_of_other_things_is_refused_and_an_empty_one_is_fine(tmp_path, capsys):
    images = tmp_path / "photos"
    images.mkdir()
    for name in ("a.png", "b.png"):
        (images / name).write_bytes(b"\x89PNG")
    for resume in (None, "auto"):
        assert run(images, 0.016, resume=resume) == 1
        line = one_error_line(capsys.readouterr().err)
        assert f"--out {images} holds 2 entries and no run (e.g. a.png); choose a new or empty folder" in line
    assert sorted(p.name for p in images.iterdir()) == ["a.png", "b.png"]
    (tmp_path / "empty").mkdir()
    assert run(tmp_path / "empty", 0.016) == 0
    assert run(tmp_path / "new" / "run", 0.016) == 0


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_out_that_is_a_file_or_under_one_is_one_line(tmp_path, capsys, tiny_model, where):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine\n")
    out = blocker if where == "a file" else blocker / "run"
    assert run(out, 0.016) == 1
    line = one_error_line(capsys.readouterr().err)
    assert (f"--out {out} is a file, not a folder" if where == "a file" else
            f"--out {out} is under {blocker}, which is a file, not a folder") in line
    assert generate.main([str(tiny_model), "--seeds", "0", "--out", str(out), "--device", "cpu"]) == 1
    line = one_error_line(capsys.readouterr().err, "alae-generate")
    expected = (f"--out {out} exists and is not a folder" if where == "a file" else
                f"cannot create the folder --out {out}: a file is in the way ({blocker} is a file)")
    assert expected in line
    assert metrics.main([str(tiny_model), "--metrics", "mse_rec", "--data", "lfw", "--out", str(out),
                         "--device", "cpu"]) == 1
    assert expected in one_error_line(capsys.readouterr().err, "alae-metrics")
    assert blocker.read_text() == "mine\n"


def test_an_out_on_a_read_only_file_system_is_one_line(tmp_path, tiny_model):
    mount = tmp_path / "ro"
    prefix = private_mount_prefix(mount, "ro,size=64k")
    status, _, err = finish(start(mount / "run", 0.016, prefix=prefix))
    assert status == 1
    assert f"cannot create the folder --out {mount / 'run'}: read-only file system" in one_error_line(err)
    gen = subprocess.run([*prefix, sys.executable, "-m", "alae.tools.generate", str(tiny_model), "--seeds", "0",
                          "--out", str(mount / "samples"), "--device", "cpu"], capture_output=True, text=True)
    assert gen.returncode == 1
    assert f"cannot create the folder --out {mount / 'samples'}: read-only file system" in \
        one_error_line(gen.stderr, "alae-generate")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_device_cuda_without_a_gpu_is_one_line_and_writes_nothing(tmp_path, capsys):
    assert run(tmp_path / "run", 0.016, "--device", "cuda") == 1
    assert "--device cuda: no CUDA device is available (use --device cpu)" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


HOLD_LOCK = "import sys, time\nfrom alae.run_folder import lock_run_folder\nlock_run_folder(sys.argv[1])\n" \
            "print('locked', flush=True)\ntime.sleep(600)\n"


@pytest.mark.slow
def test_under_torchrun_a_busy_folder_stops_every_rank_with_the_same_line(tmp_path, env):
    out, logs = tmp_path / "run", tmp_path / "logs"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        proc, wall = torchrun(2, ["-m", "alae.train", *train_args(out, 0.016)], env, f"--log-dir={logs}",
                              "--redirects=3")
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode != 0, output(proc)
    stderrs = sorted(logs.rglob("stderr.log"))
    assert len(stderrs) == 2, output(proc)
    for path in stderrs:  # rank 0 found it busy; rank 1 says the same and nothing else
        line = one_error_line(path.read_text())
        assert f"--out {out} is in use by another alae-train (pid {holder.pid} on {socket.gethostname()}" in line
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]
