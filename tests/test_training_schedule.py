"""Schedule as a pure function of images seen, against hand-derived positions."""
import math

import pytest

from alae.config import ModelConfig, load_config
from alae.lods import num_lods, resolution_of
from alae.training.schedule import Milestones, ema_beta, images_in, phase_at, sine_ease, tick_at

FFHQ = ModelConfig()  # 9 lods, 4 … 1024 px


def test_lod_boundaries_and_alpha_follow_the_reference_schedule():
    t = load_config("ffhq").train  # 480 kimg fade + 480 kimg stable per lod
    assert phase_at(t, FFHQ, 0).lod == 0 and phase_at(t, FFHQ, 0).alpha == 1.0
    assert phase_at(t, FFHQ, 959_999).lod == 0
    start1 = phase_at(t, FFHQ, 960_000)
    assert (start1.lod, start1.alpha, start1.batch, start1.resolution) == (1, 0.0, 256, 8)
    mid = phase_at(t, FFHQ, 960_000 + 240_000)
    assert mid.alpha == pytest.approx(0.5)
    quarter = phase_at(t, FFHQ, 960_000 + 120_000)
    assert quarter.alpha == pytest.approx((1 - math.cos(math.pi / 4)) / 2)
    assert phase_at(t, FFHQ, 960_000 + 480_000).alpha == 1.0
    last = phase_at(t, FFHQ, 8 * 960_000 + 100)
    assert (last.lod, last.resolution, last.lr) == (8, 1024, 0.003)
    beyond = phase_at(t, FFHQ, 50 * 960_000)
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


def test_lods_and_resolutions():
    assert [resolution_of(lod) for lod in range(9)] == [4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert [num_lods(r) for r in (4, 8, 32, 1024)] == [1, 2, 4, 9]
    assert ModelConfig(resolution=256).num_lods == 7


def test_intervals_are_whole_images():
    assert (images_in(4), images_in(0.016), images_in(0.0125), images_in(1e-6)) == (4000, 16, 12, 1)


def test_tick_numbers_follow_the_image_count():
    # Tick k holds the steps that start in [(k-1)·T, k·T): ticks of 16 images.
    assert [tick_at(n, 16) for n in (0, 8, 15, 16, 24, 32, 1000)] == [1, 1, 1, 2, 2, 3, 63]


def test_milestones_are_reached_once_per_multiple_passed():
    every_20 = Milestones(20, start=0)
    assert [every_20.reached(n) for n in (8, 16, 24, 32, 40, 48)] == [False, False, True, False, True, False]
    assert every_20.reached(100) and not every_20.reached(100)  # several multiples at once: reached once
    assert not every_20.reached(119) and every_20.reached(120)
    resumed = Milestones(20, start=30)  # a run resumed at 30 images: the next multiple is 40
    assert [resumed.reached(n) for n in (35, 40)] == [False, True]
    at_a_multiple = Milestones(20, start=40)  # resumed exactly at a multiple: that one was done before
    assert [at_a_multiple.reached(n) for n in (40, 56, 60)] == [False, False, True]


def test_lr_steps_multiply_the_lods_rate_from_their_kimg_on():
    """WAE code on MNIST: the rate halves at epoch 30 and is a tenth from epoch 50 (here at 1800
    and 3000 kimg: 60k images per epoch)."""
    cfg = load_config("mnist-vae", ["train.lr_steps=[[1800, 0.5], [3000, 0.1]]", "train.lr_per_lod=[0.001]"])
    expected = {0: 1e-3, 1_799_999: 1e-3, 1_800_000: 5e-4, 2_999_999: 5e-4, 3_000_000: 1e-4, 9_000_000: 1e-4}
    for images, lr in expected.items():
        assert phase_at(cfg.train, cfg.model, images).lr == pytest.approx(lr, rel=1e-15), images
    assert phase_at(load_config("mnist-vae").train, cfg.model, 5_000_000).lr == load_config("mnist-vae").train.lr_per_lod[0]


@pytest.mark.parametrize("steps", ["[[3000, 0.1], [1800, 0.5]]", "[[10, 0]]", "[[10]]"])
def test_lr_steps_must_be_increasing_kimg_factor_pairs(steps):
    from alae.config import ConfigError

    with pytest.raises(ConfigError, match=r"train\.lr_steps"):
        load_config("mnist-vae", [f"train.lr_steps={steps}"])
