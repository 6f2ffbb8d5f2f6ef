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

from alae.config import TrainConfig


@dataclass(frozen=True)
class Phase:
    """Where training is: lod, fade alpha in [0, 1], global batch (images) and learning rate."""

    lod: int
    alpha: float
    batch: int
    lr: float

    @property
    def resolution(self) -> int:
        return 4 * 2**self.lod


def sine_ease(t: float) -> float:
    """0 → 0, 1 → 1, zero slope at both ends (original ALAE blend factor)."""
    t = min(max(t, 0.0), 1.0)
    return 0.5 - 0.5 * math.cos(math.pi * t)


def phase_at(train: TrainConfig, num_lods: int, images_seen: int) -> Phase:
    """The schedule position after `images_seen` real images (global count over all processes)."""
    kimg = images_seen / 1000.0
    per_lod = train.kimg_fade + train.kimg_stable
    lod = min(int(kimg // per_lod), num_lods - 1)
    into_lod = kimg - lod * per_lod
    if lod == 0 or train.kimg_fade == 0:
        alpha = 1.0
    else:
        alpha = sine_ease(into_lod / train.kimg_fade)
    return Phase(lod=lod, alpha=alpha, batch=train.batch_per_lod[lod], lr=train.lr_per_lod[lod])


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
