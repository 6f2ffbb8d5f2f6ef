"""The CPU thread count of a process: OMP_NUM_THREADS, else its cores shared by torchrun's local ranks."""
import os

import pytest
import torch

from alae.tools import classify, metrics, reconstruct
from alae.threads import ThreadsError, apply_threads, auto_threads, available_cores, resolve_threads


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
