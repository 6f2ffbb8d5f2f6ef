"""The loop benchmark runs the plain loop and the trainer on the same config and profiles the trainer's step."""
import re

import pytest

from alae.tools import benchmark_loop


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ALAE_CACHE", str(tmp_path_factory.getbasetemp() / "alae-family-cache"))


@pytest.mark.parametrize("config, steps", [("mnist-vae", 4), ("mnist-wae-mmd", 6)])  # batches of 128 and 100;
def test_prints_both_rates_their_ratio_and_a_profile_that_adds_up(capsys, config, steps):  # hand-written, own step
    assert benchmark_loop.main(["--config", config, "--kimg", "0.512", "--rounds", "1", "--threads", "1",
                                "model.mlp_width=32", "log.kimg_per_tick=0.256", "log.kimg_per_sample=0.5"]) == 0
    out = capsys.readouterr().out
    plain, trainer = map(float, re.search(r"round 1: plain +([\d.]+) img/s +trainer +([\d.]+) img/s", out).groups())
    assert plain > 0 and trainer > 0
    ratio = float(re.search(r"trainer / plain ([\d.]+)", out).group(1))
    assert ratio == pytest.approx(trainer / plain, abs=1e-3)
    assert "1 threads (asked for)" in out
    parts = dict(re.findall(r"^  ([a-zA-Z ]+?) +(-?[\d.]+) +-?[\d.]+%$", out, re.MULTILINE))
    assert set(parts) == {"data", "objective step", "EMA", "schedule", "statistics", "progress bar",
                          "the rest of the loop", "step total"}
    assert f"profile of one more trainer run: {steps} steps" in out
    step_parts = sum(float(v) for k, v in parts.items() if k != "step total")
    assert step_parts == pytest.approx(float(parts["step total"]), abs=0.01)
    assert float(parts["objective step"]) > 0 and float(parts["data"]) > 0
    ticks = re.search(r"tick ends.*: tick records [\d.]+ \((\d+)\), sample grids [\d.]+ \((\d+)\), "
                      r"checkpoints [\d.]+ \((\d+)\)", out)
    assert ticks and ticks.groups() == ("2", "1", "1")  # 2 ticks; the grids and the checkpoint at the end
