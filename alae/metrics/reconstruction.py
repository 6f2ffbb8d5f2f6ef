"""Reconstruction metrics: how close G(E(x)) comes back to real images x.

The images: the database's last `holdout` images when a holdout is given (the images training
never saw, `alae.training.data.held_out_images`), else the whole database; `{N}k` takes the first N of
those. Reconstruction j of the set (its position, whatever the rank) uses noise maps seeded by
(seed, "eval", j), the draws of the training loop's held-out reconstructions. Each metric
records the number of images it used.

- fid_rec{N}k: FID of the reconstructions (rounded to 8 bits) against the same real images, at
  the resolution of `lod` (as the original ALAE's metrics/fid_rec.py).
- lpips_rec{N}k: mean LPIPS between reconstruction and original, both box-downscaled to at most
  256 px and rounded to 8 bits first (as the original ALAE's metrics/lpips.py).
- mse_rec / mse_rec{N}k: the training loop's held-out reconstruction MSE: the images at the
  model's full resolution are box-downsampled to the resolution of `lod`, encoded and decoded
  at (lod, alpha), the reconstructions nearest-upsampled back; mean squared error over all
  pixels and channels in the model's range [−1, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import alae.randomness as randomness
from alae.datasets import to_model_range, to_uint8
from alae.metrics.dataset_stats import real_statistics
from alae.metrics.errors import MetricError
from alae.metrics.evaluation import Evaluation
from alae.metrics.frechet import feature_moments, frechet_distance
from alae.metrics.lpips_inputs import downscale_for_vgg
from alae.metrics.results import Figures
from alae.metrics.sharding import gather_rows, sum_over_ranks
from alae.metrics.splits import image_labels
from alae.networks.layers import downsample2x


def reconstruction_range(ev: Evaluation, count: int | None) -> range:
    """Database indices of the reconstruction images: the held-out ones or all, the first `count` of them."""
    total = len(ev.images(ev.full_resolution))
    if ev.holdout is not None and not 0 < ev.holdout <= total:
        raise MetricError(f"holdout {ev.holdout} is not between 1 and the {total} images of {ev.data}")
    indices = range(total - ev.holdout, total) if ev.holdout is not None else range(total)
    return indices if count is None else indices[:count]


@torch.no_grad()
def reconstruct(ev: Evaluation, x: torch.Tensor, positions: range) -> torch.Tensor:
    """G(E(x)) at (lod, alpha): x [B, C, R, R] in [−1, 1] at the lod's resolution, image k with
    the noise of set position positions[k]."""
    noise = randomness.per_sample_noise(ev.model.G.noise_shapes(ev.lod), positions, ev.device, ev.seed, "eval")
    return ev.model.reconstruct(x, ev.lod, ev.alpha, noise=noise)


def _positions(batch: range, indices: range) -> range:
    return range(batch.start - indices.start, batch.stop - indices.start)


def _details(ev: Evaluation) -> dict:
    return {"holdout": ev.holdout}


def fid_rec(ev: Evaluation, name: str, count: int) -> Figures:
    indices = reconstruction_range(ev, count)
    real = real_statistics(ev, indices, ev.resolution, False, f"{name} reals")
    inception, parts = ev.inception(), []
    bar = ev.progress(len(ev.my_shard(indices)), f"{name} reconstructions")
    for batch, images in ev.image_batches(indices, ev.resolution):
        parts.append(inception(to_uint8(reconstruct(ev, to_model_range(images), _positions(batch, indices)))))
        bar.update(len(images))
    bar.close()
    features = gather_rows(torch.cat(parts), len(indices), ev.ctx)
    value = None if features is None else frechet_distance(*feature_moments(features.numpy()), real.mu, real.sigma)
    details = {**_details(ev), "real_statistics": "cached" if real.cached else "computed"}
    return Figures(value, {"real": len(indices), "reconstructed": len(indices)}, details)


def lpips_rec(ev: Evaluation, name: str, count: int) -> Figures:
    indices = reconstruction_range(ev, count)
    lpips, total = ev.lpips(), 0.0
    bar = ev.progress(len(ev.my_shard(indices)), name)
    for batch, images in ev.image_batches(indices, ev.resolution):
        x = to_model_range(images)
        rec = reconstruct(ev, x, _positions(batch, indices))
        shown = [to_model_range(to_uint8(downscale_for_vgg(t))) for t in (rec, x)]
        with torch.no_grad():
            total += lpips(*shown).double().sum().item()
        bar.update(len(images))
    bar.close()
    (total,) = sum_over_ranks([total], ev.ctx)
    return Figures(total / len(indices), {"reconstructed": len(indices)}, _details(ev))


def to_full_resolution(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Images [N, C, r, r] nearest-upsampled to [N, C, resolution, resolution] (unchanged if r is already that)."""
    return F.interpolate(x, size=(resolution, resolution), mode="nearest") if x.shape[-1] < resolution else x


@torch.no_grad()
def downsampled_to(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """images [B, C, R, R] box-downsampled by halves to `resolution` (≤ R, R / resolution a power of 2)."""
    while images.shape[-1] > resolution:
        images = downsample2x(images)
    return images


def reconstruct_at_full_resolution(model, originals: torch.Tensor, lod: int, alpha: float, positions: range,
                                   seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """What mse_rec and the training grids compare: originals [B, C, R, R] in [−1, 1] at the
    model's full resolution are box-downsampled to the resolution of `lod`, reconstructed at
    (lod, alpha) with the noise of set positions `positions` (and their `labels`, int [B], for a
    decoder that takes them), and nearest-upsampled back to R."""
    x = downsampled_to(originals, model.resolution_at(lod))
    noise = randomness.per_sample_noise(model.G.noise_shapes(lod), positions, originals.device, seed, "eval")
    return to_full_resolution(model.reconstruct(x, lod, alpha, noise=noise, labels=labels), originals.shape[-1])


def mse_rec(ev: Evaluation, name: str, count: int | None) -> Figures:
    indices = reconstruction_range(ev, count)
    squared, values = 0.0, 0
    bar = ev.progress(len(ev.my_shard(indices)), name)
    for batch, images in ev.image_batches(indices, ev.full_resolution):
        originals = to_model_range(images)
        rec = reconstruct_at_full_resolution(ev.model, originals, ev.lod, ev.alpha, _positions(batch, indices), ev.seed,
                                             image_labels(ev, batch))
        squared += (rec.double() - originals.double()).square().sum().item()
        values += originals.numel()
        bar.update(len(images))
    bar.close()
    squared, values = sum_over_ranks([squared, float(values)], ev.ctx)
    return Figures(squared / values, {"reconstructed": len(indices)}, _details(ev))
