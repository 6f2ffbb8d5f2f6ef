"""FID and KID of images sampled from F and G, against the database's real images.

Generated image i (a global index, whatever the rank) has z_i drawn from a generator seeded by
(seed, "metric-z", i) and noise maps seeded by (seed, "metric-noise", i), drawn on the compute
device; no truncation (ψ = 1), and no style mixing unless `mixing` is on. With `mixing` (the
original ALAE's FID protocol, which sampled with the training-time mixing left on), the
original's rule applies to each group of `ORIGINAL_BATCH` consecutive images (a batch of its
sampling loop; the group follows the global index, so the figure depends on neither `batch` nor
the number of ranks): with probability `MIXING_PROB` one cutoff randint(1, 2·(lod+1)) inclusive for the whole
group, from which a second w from z'_i (seed, "metric-z2", i) takes over the style layers (the
cutoff 2·(lod+1) mixes nothing; `alae.randomness.crossover_layers(per_batch=True)`). Images are rounded to 8 bits (`to_uint8`, as StyleGAN2-ADA
quantizes generated images) before the feature network, like the stored real images.

Real images: the first N of the database (`fid{N}k`, StyleGAN2-ADA's fid50k with
max_real = N), or all of it (`fid{N}k_full`, StyleGAN2-ADA's fid50k_full), at the resolution
of `lod`, with no mirroring.
"""
from __future__ import annotations

import numpy as np
import torch

import alae.randomness as randomness
from alae.datasets import to_uint8
from alae.metrics.dataset_stats import real_statistics
from alae.metrics.evaluation import Evaluation
from alae.metrics.frechet import feature_moments, frechet_distance, kernel_inception_distance
from alae.metrics.results import Figures
from alae.metrics.sharding import gather_rows

MIXING_PROB = 0.9  # the original ALAE's STYLE_MIXING_PROB, left on by its FID script
ORIGINAL_BATCH = 16  # the original's metrics/fid.py samples in batches of 16; mixing is decided per batch


def latents(ev: Evaluation, keys: range, purpose: str) -> torch.Tensor:
    """z [len(keys), latent] from the model's prior, on the device in the model's dtype, row k
    drawn on the CPU from a generator seeded by (seed, purpose, keys[k])."""
    g = torch.Generator()
    rows = []
    for key in keys:
        g.manual_seed(randomness.derive_seed(ev.seed, purpose, key))
        rows.append(ev.model.prior.sample(1, g))
    z = torch.cat(rows) if rows else torch.zeros(0, ev.model.latent_dim)
    return z.to(ev.device, ev.model.w_avg.dtype)


@torch.no_grad()
def generated_styles(ev: Evaluation, keys: range, count: int) -> torch.Tensor:
    """Styles [len(keys), L, latent] of generated images `keys` out of `count` (see the module docstring)."""
    model = ev.model
    w = model.map(latents(ev, keys, "metric-z"))
    if not ev.mixing:
        return model.broadcast(w)
    w2 = model.map(latents(ev, keys, "metric-z2"))
    groups = range(keys.start // ORIGINAL_BATCH, (keys.stop - 1) // ORIGINAL_BATCH + 1)
    per_group = torch.cat([randomness.crossover_layers(1, slice(None), 2 * (ev.lod + 1), MIXING_PROB, ev.seed,
                                                       "metric-mix", group, per_batch=True) for group in groups])
    crossover = per_group[torch.arange(keys.start, keys.stop) // ORIGINAL_BATCH - groups.start]
    return model.crossover_styles(w, w2, crossover, ev.lod)


@torch.no_grad()
def generated_images(ev: Evaluation, keys: range, count: int) -> torch.Tensor:
    """uint8 images [len(keys), C, R, R] on the device: generated images `keys` out of `count`."""
    noise = randomness.per_sample_noise(ev.model.G.noise_shapes(ev.lod), keys, ev.device, ev.seed, "metric-noise")
    return to_uint8(ev.model.generate(generated_styles(ev, keys, count), ev.lod, ev.alpha, noise))


def generated_features(ev: Evaluation, count: int, desc: str) -> np.ndarray | None:
    """Inception features float32 [count, D] of `count` generated images, on rank 0 (None elsewhere)."""
    key = ("generated", count)
    if key not in ev.memo:
        inception = ev.inception()
        parts = []
        bar = ev.progress(len(ev.my_shard(range(count))), desc)
        for keys in ev.chunks(range(count)):
            parts.append(inception(generated_images(ev, keys, count)))
            bar.update(len(keys))
        bar.close()
        features = gather_rows(torch.cat(parts), count, ev.ctx)
        ev.memo[key] = None if features is None else features.numpy()
    return ev.memo[key]


def _real_range(ev: Evaluation, count: int, full: bool) -> range:
    total = len(ev.images(ev.resolution))
    return range(total if full else min(count, total))


def _features_of_both(ev: Evaluation, name: str, count: int, full: bool):
    real = real_statistics(ev, _real_range(ev, count, full), ev.resolution, ev.keep_real_features, f"{name} reals")
    generated = generated_features(ev, count, f"{name} generated")
    images = {"generated": count, "real": real.count}
    details = {"mixing": ev.mixing, "real_statistics": "cached" if real.cached else "computed"}
    return real, generated, images, details


def fid(ev: Evaluation, name: str, count: int, full: bool) -> Figures:
    """Fréchet Inception distance of `count` generated images and the real set."""
    real, generated, images, details = _features_of_both(ev, name, count, full)
    value = None
    if ev.ctx.is_main:
        value = frechet_distance(*feature_moments(generated), real.mu, real.sigma)
    return Figures(value, images, details)


def kid(ev: Evaluation, name: str, count: int, full: bool) -> Figures:
    """Kernel Inception distance (StyleGAN2-ADA's: 100 subsets of at most 1000) of `count`
    generated images and the real set; the subsets are drawn from a generator seeded by (seed, "kid")."""
    real, generated, images, details = _features_of_both(ev, name, count, full)
    value = None
    if ev.ctx.is_main:
        rng = np.random.default_rng(randomness.derive_seed(ev.seed, "kid"))
        value = kernel_inception_distance(generated, real.features, rng)
    return Figures(value, images, details)
