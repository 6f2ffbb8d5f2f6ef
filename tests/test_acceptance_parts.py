"""The acceptance parts on the CPU: the network comparison, the step timing and its budget, the
sync counting, the multi-process comparison rule, the cuda-test runner."""
import warnings

import numpy as np
import pytest
import torch

import alae.networks.layers as layers
from alae.acceptance import host_syncs, multi_gpu
from alae.acceptance.cuda_tests import run_cuda_tests
from alae.acceptance.network_ops import network_ops_part, relative_difference
from alae.acceptance.report import FAILED, PASSED
from alae.acceptance.step_speed import step_speed_part
from alae.config import load_config

TINY = ("model.resolution=8", "model.channels=[16, 8]", "model.latent_dim=16", "model.mapping_layers=2",
        "train.batch_per_lod=[4, 4]", "train.lr_per_lod=[0.002, 0.003]")
CPU = torch.device("cpu")


def test_relative_difference_is_the_largest_error_over_the_largest_reference_magnitude():
    a, b = torch.tensor([1.0, -2.0, 3.5]), torch.tensor([1.0, -2.5, 4.0])
    assert relative_difference(a, b) == pytest.approx(np.max(np.abs(a.numpy() - b.numpy())) / 4.0)


def test_the_same_ops_agree_exactly_and_a_perturbed_op_fails(monkeypatch):
    cfg = load_config("demo", list(TINY))
    part = network_ops_part(cfg, CPU, impl="ref", reference="ref")
    assert part.status == PASSED and len(part.rows) == 8  # 4 networks x 2 alphas
    assert all(row[3] == 0.0 for row in part.rows)
    original = layers.bias_act

    def perturbed(x, *args, **kwargs):  # what a wrong kernel would do under ALAE_KERNELS=auto
        out = original(x, *args, **kwargs)
        return out * 1.01 if __import__("os").environ.get("ALAE_KERNELS") == "auto" else out

    monkeypatch.setattr(layers, "bias_act", perturbed)
    part = network_ops_part(cfg, CPU, impl="auto", reference="ref")
    assert part.status == FAILED
    worst = max(row[3] for row in part.rows)
    assert worst > 1e-3 and "largest difference" in part.summary


def test_step_speed_rows_per_lod_and_precision_and_a_spent_budget_skips():
    part, rates = step_speed_part(["demo"], CPU, seconds=600, impls=("ref",), steps=1, overrides=TINY)
    assert [(r[1], r[4]) for r in part.rows] == [(0, "fp32"), (1, "fp32"), (0, "bf16"), (1, "bf16")]
    for row in part.rows:
        assert row[3] == 4 and row[6] == pytest.approx(row[3] / (row[7] / 1000))  # img/s = batch / step time
    assert set(rates) == {("demo", 4), ("demo", 8)}
    part, rates = step_speed_part(["demo"], CPU, seconds=-1, impls=("ref",), steps=1, overrides=TINY)
    assert all(row[-1] == "skipped (budget)" for row in part.rows) and len(part.rows) == 4 and rates == {}
    assert "4 skipped" in part.summary


def test_syncs_are_counted_per_step_and_apart_between_steps():
    class Objective:
        @staticmethod
        def train_step(n):
            for _ in range(n):
                warnings.warn(f"called a synchronizing CUDA operation ({n})")
            warnings.warn("an unrelated warning")

    def run():
        for n in (0, 2, 1):
            Objective.train_step(n)
        warnings.warn("between ticks: called a synchronizing CUDA operation")

    per_step, outside, places = host_syncs.count_syncs(run, Objective)
    assert per_step == [0, 2, 1] and outside == 1 and sum(places.values()) == 3
    assert Objective.train_step.__name__ == "train_step"  # unwrapped again

    def train_main(argv):
        for n in (0, 0):
            Objective.train_step(n)
        return 0

    assert host_syncs.host_syncs_part(train_main, [], Objective, on_cuda=False).status == PASSED
    assert host_syncs.host_syncs_part(lambda argv: run() or 0, [], Objective, on_cuda=False).status == FAILED
    assert "failed (exit status [1])" in host_syncs.host_syncs_part(lambda argv: 1, [], Objective, False).summary


def test_the_multi_process_rule_and_the_process_count():
    b = {"model": {"w": torch.ones(100, dtype=torch.float64)}, "ema": {"w": torch.ones(4)}}
    a = {"model": {"w": torch.ones(100, dtype=torch.float64) + 1e-5}, "ema": {"w": torch.ones(4)}}
    ratio, where = multi_gpu.worst_ratio(a, b)
    norm_diff, norm_b = 1e-5 * 10, 10.0  # ‖a − b‖ and ‖b‖ of 100 elements
    assert where == "model.w"
    assert ratio == pytest.approx(norm_diff / (multi_gpu.RTOL * norm_b + multi_gpu.ATOL * 10), rel=1e-6)
    assert [multi_gpu.processes_for(n) for n in (1, 2, 3, 6, 8, 16)] == [1, 2, 2, 4, 8, 16]


@pytest.mark.slow
def test_two_gloo_processes_equal_one(tmp_path):
    """The part itself on the CPU: torchrun with 2 gloo ranks against one process (about 40 s)."""
    part = multi_gpu.multi_gpu_part(tmp_path, "cpu", 2, timeout_s=300)
    assert part.status == PASSED, part.summary
    assert part.rows[0][0] == 2 and part.rows[0][1] == 4  # 64 images at a global batch of 16


def test_cuda_tests_runner(tmp_path):
    ok, text = run_cuda_tests(60, tests=tmp_path / "missing")
    assert ok is None and text.startswith(f"no tests folder at {tmp_path / 'missing'}")
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_gpu.py").write_text("import pytest\n\n@pytest.mark.cuda\ndef test_a():\n    assert True\n\n"
                                       "def test_not_selected():\n    assert False\n")
    ok, text = run_cuda_tests(120, tests=tests)
    assert ok is True and "1 passed" in text and "1 deselected" in text
    (tests / "test_gpu.py").write_text("import pytest\n\n@pytest.mark.cuda\ndef test_a():\n    assert False\n")
    ok, text = run_cuda_tests(120, tests=tests)
    assert ok is False and "1 failed" in text
    (tests / "test_gpu.py").write_text("def test_b():\n    assert True\n")
    assert run_cuda_tests(120, tests=tests)[0] is None
