"""Schedule as a pure function of images seen, against hand-derived positions."""
import math

import pytest

from alae.config import load_config
from alae.schedule import ema_beta, phase_at, sine_ease


def test_lod_boundaries_and_alpha_follow_the_reference_schedule():
    t = load_config("ffhq").train  # 480 kimg fade + 480 kimg stable per lod
    assert phase_at(t, 9, 0).lod == 0 and phase_at(t, 9, 0).alpha == 1.0
    assert phase_at(t, 9, 959_999).lod == 0
    start1 = phase_at(t, 9, 960_000)
    assert (start1.lod, start1.alpha, start1.batch, start1.resolution) == (1, 0.0, 256, 8)
    mid = phase_at(t, 9, 960_000 + 240_000)
    assert mid.alpha == pytest.approx(0.5)
    quarter = phase_at(t, 9, 960_000 + 120_000)
    assert quarter.alpha == pytest.approx((1 - math.cos(math.pi / 4)) / 2)
    assert phase_at(t, 9, 960_000 + 480_000).alpha == 1.0
    last = phase_at(t, 9, 8 * 960_000 + 100)
    assert (last.lod, last.resolution, last.lr) == (8, 1024, 0.003)
    beyond = phase_at(t, 9, 50 * 960_000)
    assert (beyond.lod, beyond.alpha) == (8, 1.0)


def test_sine_ease_is_monotone_with_flat_ends():
    values = [sine_ease(i / 100) for i in range(101)]
    assert values[0] == 0.0 and values[-1] == 1.0
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert values[1] < 0.01 / 2 and 1 - values[99] < 0.01 / 2  # slope 0 at both ends


def test_ema_beta_has_the_requested_half_life():
    beta = ema_beta(32, 10.0)
    assert beta ** (10_000 / 32) == pytest.approx(0.5)
    assert ema_beta(32, 0.0) == 0.0
