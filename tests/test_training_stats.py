"""A tick's statistics: means over the steps that reported each one, and the divergence check."""
import pytest
import torch

from alae.training.stats import TickStats, TrainingDiverged


def test_each_statistic_is_averaged_over_the_steps_that_reported_it():
    stats = TickStats()
    stats.add(0, {"loss_d": torch.tensor(1.0), "r1": torch.tensor(8.0)})
    stats.add(1, {"loss_d": torch.tensor(2.0)})
    stats.add(2, {"loss_d": torch.tensor(6.0, dtype=torch.float64)})
    assert stats.reduce(1, "in tick 1") == {"loss_d": pytest.approx(3.0), "r1": 8.0}
    assert stats.reduce(1, "in tick 2") == {}  # reduce starts the next tick
    stats.add(3, {"loss_g": torch.tensor(0.5)})
    assert stats.reduce(1, "in tick 2") == {"loss_g": 0.5}


def test_a_non_finite_statistic_names_the_first_step_and_statistic():
    stats = TickStats()
    stats.add(7, {"loss_d": torch.tensor(1.0), "loss_latent": torch.tensor(0.5)})
    stats.add(8, {"loss_d": torch.tensor(1.0), "loss_latent": torch.tensor(float("inf"))})
    stats.add(9, {"loss_d": torch.tensor(float("nan")), "loss_latent": torch.tensor(float("nan"))})
    with pytest.raises(TrainingDiverged, match=r"non-finite loss_latent at step 8 in tick 3 \(step 8: loss_d 1, "
                                               r"loss_latent inf\)"):
        stats.reduce(1, "in tick 3")
