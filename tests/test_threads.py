"""The CPU thread count of a process: OMP_NUM_THREADS, else its cores shared by torchrun's local ranks."""
import json
import os
import subprocess
import sys

import pytest
import torch

from alae.tools import classify, metrics, reconstruct
from alae.threads import (ThreadsError, apply_threads, auto_threads, available_cores, refresh_threads, register,
                          release_threads, resolve_threads, sharers, unregister)


@pytest.mark.parametrize("environ, cores, expected", [
    ({}, 16, (16, "16 cores")),
    ({"LOCAL_WORLD_SIZE": "4"}, 16, (4, "16 cores / 4 local ranks")),
    ({"LOCAL_WORLD_SIZE": "3"}, 16, (5, "16 cores / 3 local ranks")),
    ({"LOCAL_WORLD_SIZE": "8"}, 2, (1, "2 cores / 8 local ranks")),  # never 0
    ({"LOCAL_WORLD_SIZE": "1"}, 2, (2, "2 cores")),
    ({"OMP_NUM_THREADS": "3", "LOCAL_WORLD_SIZE": "4"}, 16, (3, "OMP_NUM_THREADS")),  # the user's word wins
    ({"OMP_NUM_THREADS": "0"}, 6, (6, "6 cores")),  # not a usable count: ignored
    ({"OMP_NUM_THREADS": "four"}, 6, (6, "6 cores")),
    ({"OMP_NUM_THREADS": ""}, 6, (6, "6 cores")),
])
def test_automatic_threads(environ, cores, expected):
    assert auto_threads(environ, cores) == expected
    assert resolve_threads(0, environ, cores) == expected


def test_a_count_asked_for_is_taken_as_it_is_and_a_negative_one_refused():
    assert resolve_threads(3, {"OMP_NUM_THREADS": "1"}, 16) == (3, "asked for")
    with pytest.raises(ThreadsError, match="must be >= 0"):
        resolve_threads(-1)


def test_the_cores_are_the_affinity_mask():
    assert available_cores() == len(os.sched_getaffinity(0))


def test_apply_threads_sets_torchs_count(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        assert apply_threads(0) == (1, "OMP_NUM_THREADS") and torch.get_num_threads() == 1
        assert apply_threads(2) == (2, "asked for") and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("tool, argv", [
    (metrics, ["MODEL", "--metrics", "mse_rec"]),
    (reconstruct, ["MODEL", "IMAGES", "--out", "OUT"]),
    (classify, ["MODEL", "IMAGES", "--out", "OUT"]),
])
def test_the_computing_tools_take_threads(tool, argv):
    assert tool.parse_args(argv).threads == 0
    assert tool.parse_args([*argv, "--threads", "1"]).threads == 1


def test_a_negative_thread_count_is_one_line(tmp_path, tiny_model, capsys):
    assert reconstruct.main([str(tiny_model), str(tmp_path), "--out", str(tmp_path / "out"), "--threads", "-2"]) == 1
    err = capsys.readouterr().err
    assert "alae-reconstruct: error: a thread count must be >= 0" in err and "Traceback" not in err


@pytest.mark.parametrize("environ, cores, sharers, expected", [
    ({}, 2, 2, (1, "2 cores / 2 alae processes")),
    ({}, 16, 3, (5, "16 cores / 3 alae processes")),
    ({}, 2, 5, (1, "2 cores / 5 alae processes")),  # never 0
    ({"LOCAL_WORLD_SIZE": "4"}, 16, 2, (4, "16 cores / 4 local ranks")),  # the ranks are among the sharers
    ({"OMP_NUM_THREADS": "2"}, 2, 2, (2, "OMP_NUM_THREADS")),
])
def test_automatic_threads_divide_the_cores_among_the_registered_processes(environ, cores, sharers, expected):
    assert auto_threads(environ, cores, sharers) == expected


@pytest.fixture
def share(tmp_path, monkeypatch):
    monkeypatch.setenv("ALAE_CPU_SHARE_DIR", str(tmp_path / "share"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    before = torch.get_num_threads()
    yield tmp_path / "share"
    release_threads()
    torch.set_num_threads(before)


def test_live_processes_on_the_same_cores_are_counted_and_gone_ones_removed(share):
    own = register()
    assert own == share / str(os.getpid()) and sharers() == 1
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        register(pid=other.pid)
        assert sharers() == 2
        elsewhere = share / "1"  # pid 1 is alive; its cores here are none of ours
        elsewhere.write_text(json.dumps([max(os.sched_getaffinity(0)) + 1]))
        assert sharers() == 2
    finally:
        other.kill()
        other.wait()
    assert sharers() == 1 and not (share / str(other.pid)).exists()
    unregister(own)
    assert not own.exists()


def test_a_run_drops_to_its_share_when_another_starts_and_takes_the_cores_back_after(share):
    cores = available_cores()
    assert apply_threads(0) == (cores, f"{cores} cores") and torch.get_num_threads() == cores
    assert refresh_threads(0) is None  # alone: nothing changes
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        register(pid=other.pid)
        changed = refresh_threads(0)
        if cores > 1:
            assert changed == (cores // 2, f"{cores} cores / 2 alae processes") and torch.get_num_threads() == cores // 2
        assert refresh_threads(3) is None and torch.get_num_threads() == max(1, cores // 2)  # a count asked for stays
    finally:
        other.kill()
        other.wait()
    assert refresh_threads(0) in (None, (cores, f"{cores} cores")) and torch.get_num_threads() == cores
    release_threads()
    assert not (share / str(os.getpid())).exists()
