"""tools/kill_test.py, the fast version: a tiny run killed with SIGKILL at 2 random moments and
resumed each time ends as the uninterrupted run, every tensor equal; and its comparison finds a
difference of one ulp in one tensor."""
import pytest
import torch

from alae.tools import kill_test
from fault_runs import TINY, demo_cache  # noqa: F401


@pytest.mark.slow
def test_a_run_killed_twice_ends_bit_for_bit_as_the_uninterrupted_run(tmp_path):
    lines = []
    report = kill_test.kill_test(tmp_path, "demo", 0.064, 2, 0, [*TINY, "log.kimg_per_checkpoint=0.016"],
                                 say=lines.append)
    assert report.problems == [] and len(report.kills) == 2 and report.launches == 4, (report, lines)
    assert report.tensors > 100  # model, EMA and both optimizers' moments
    assert (tmp_path / "killed" / "checkpoints" / "latest.pt").is_file()


def test_the_comparison_sees_one_ulp_and_a_missing_key():
    a = {"model": {"w": torch.ones(3)}, "optimizers": {"G": {"state": {0: {"exp_avg": torch.zeros(2)}}}},
         "progress": {"step": 4}}
    b = {"model": {"w": torch.tensor([1.0, torch.nextafter(torch.tensor(1.0), torch.tensor(2.0)), 1.0])},
         "optimizers": {"G": {"state": {0: {"exp_avg": torch.zeros(2)}}}}, "progress": {"step": 4}}
    assert kill_test.state_differences(a, a) == ([], 2)
    assert kill_test.state_differences(a, b) == (["model.w"], 2)
    assert kill_test.state_differences(a, {**a, "progress": {}})[0] == ["progress: keys ['step'] differ"]
