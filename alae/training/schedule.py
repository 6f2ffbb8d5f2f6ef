"""Progressive-growing schedule as a pure function of the number of real images seen.

Each level of detail `lod` (0 = 4×4 … L−1 = full resolution) lasts `kimg_fade + kimg_stable`
thousand images: first the new block fades in (alpha ramps 0→1 with the original code's sine
easing, alpha = sin(π·t − π/2)/2 + 1/2 = (1 − cos πt)/2 for t ∈ [0, 1]), then it trains stable
(alpha = 1). Lod 0 has nothing to fade from, so alpha = 1 throughout. After the last lod's
phases the schedule stays at the last lod until training ends.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from alae.config import ModelConfig, TrainConfig


@dataclass(frozen=True)
class Phase:
    """Where training is: lod, fade alpha in [0, 1], global batch (images), learning rate and the
    image side at the lod (pixels: 4·2^lod for the style backbone, 28 for mlp)."""

    lod: int
    alpha: float
    batch: int
    lr: float
    resolution: int


def sine_ease(t: float) -> float:
    """0 → 0, 1 → 1, zero slope at both ends (original ALAE blend factor)."""
    t = min(max(t, 0.0), 1.0)
    return 0.5 - 0.5 * math.cos(math.pi * t)


def lr_factor(train: TrainConfig, images_seen: int) -> float:
    """The factor of train.lr_steps in force after `images_seen` images: that of the last step at or
    before it (1 before the first)."""
    factor = 1.0
    for kimg, step_factor in train.lr_steps:
        if images_seen >= round(kimg * 1000):
            factor = step_factor
    return factor


def phase_at(train: TrainConfig, model: ModelConfig, images_seen: int) -> Phase:
    """The schedule position after `images_seen` real images (global count over all processes); its
    learning rate is the lod's times `lr_factor`."""
    num_lods = model.num_lods
    kimg = images_seen / 1000.0
    per_lod = train.kimg_fade + train.kimg_stable
    lod = min(int(kimg // per_lod), num_lods - 1)
    into_lod = kimg - lod * per_lod
    if lod == 0 or train.kimg_fade == 0:
        alpha = 1.0
    else:
        alpha = sine_ease(into_lod / train.kimg_fade)
    lr = train.lr_per_lod[lod]
    if train.lr_steps:
        lr *= lr_factor(train, images_seen)
    return Phase(lod=lod, alpha=alpha, batch=train.batch_per_lod[lod], lr=lr, resolution=model.resolution_at(lod))


def final_stable_kimg(train: TrainConfig, num_lods: int) -> float:
    """Where the last lod's stable phase starts (thousands of images): after its fade-in."""
    if num_lods == 1:
        return 0.0
    return (num_lods - 1) * (train.kimg_fade + train.kimg_stable) + train.kimg_fade


def ema_beta(batch: int, halflife_kimg: float) -> float:
    """Per-step EMA decay for a half-life in images: 0.5 ** (batch / halflife_images) (original code)."""
    if halflife_kimg == 0:
        return 0.0
    return 0.5 ** (batch / (halflife_kimg * 1000.0))


def images_in(kimg: float) -> int:
    """An interval given in thousands of images as a whole number of images (at least one)."""
    return max(1, round(kimg * 1000))


def tick_at(images_seen: int, tick_images: int) -> int:
    """The number (from 1) of the tick that a step starting at `images_seen` belongs to."""
    return images_seen // tick_images + 1


class Milestones:
    """The multiples of an interval of images, passed as training advances from `start`.

    `reached(images_seen)` is True once each time the count has passed one or more multiples
    not yet reported (the loop asks at tick ends, so a sample due at 50 kimg is written at the
    first tick end at or after 50 kimg), False otherwise.
    """

    def __init__(self, every_images: int, start: int):
        self.every = every_images
        self.next = (start // every_images + 1) * every_images

    def reached(self, images_seen: int) -> bool:
        if images_seen < self.next:
            return False
        self.next = (images_seen // self.every + 1) * self.every
        return True
