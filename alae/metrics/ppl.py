"""Perceptual path length in W (Karras et al. 2019), as StyleGAN's and the original ALAE's metrics compute it.

Pair i (a global index, whatever the rank) draws z0 and z1 from (seed, "ppl-z0", i) and
(seed, "ppl-z1", i), and t as element i of one draw seeded by (seed, "ppl-t"): t ~ U(0, 1) for ``ppl_wfull``, t ∈ {0, 1} with equal probability for
``ppl_wend`` (the paper's endpoints; StyleGAN's code uses t = 0 alone, which gives the same
figure as ε → 0 because the LPIPS of a small step is even in the step). With w = F(z):

    images G(lerp(w0, w1, t)) and G(lerp(w0, w1, t + ε)), ε = 1e-4, one set of noise maps
    (seed, "ppl-noise", i) for both; no truncation, no mixing.

Both images are cropped to the face (c = H // 8: rows 3c:7c, columns 2c:6c), box-downscaled to
at most 256 px (`downscale_for_vgg`, factor from the cropped size, as StyleGAN and ALAE do;
StyleGAN2-ADA's PyTorch port takes the factor from the full size), and passed to LPIPS as
floats in the model's range: the LPIPS network maps them to [0, 255] without rounding, so a
step of ε is not quantized away. The distance is LPIPS / ε²; the figure is the mean of the
distances between their 1st (numpy 'lower') and 99th ('higher') percentiles, as StyleGAN2-ADA.
"""
from __future__ import annotations

import numpy as np
import torch

import alae.randomness as randomness
from alae.metrics.evaluation import Evaluation
from alae.metrics.generation import latents
from alae.metrics.lpips_inputs import downscale_for_vgg
from alae.metrics.results import Figures
from alae.metrics.sharding import gather_rows

PPL_EPSILON = 1e-4  # StyleGAN / StyleGAN2-ADA / ALAE
PPL_SAMPLES = 50_000  # StyleGAN2-ADA ppl_wend, ppl_wfull; ALAE's metrics/ppl.py
PERCENTILES = (1, 99)  # StyleGAN2-ADA: outliers outside these are dropped
SAMPLINGS = ("end", "full")


def face_crop(images: torch.Tensor) -> torch.Tensor:
    """[N, C, H, H] → [N, C, H/2, H/2]: rows 3c:7c, columns 2c:6c with c = H // 8 (StyleGAN's PPL crop)."""
    c = images.shape[2] // 8
    return images[:, :, 3 * c:7 * c, 2 * c:6 * c]


def filtered_mean(distances: np.ndarray) -> float:
    """Mean of the values between the 1st ('lower') and 99th ('higher') percentiles, inclusive."""
    lo = np.percentile(distances, PERCENTILES[0], method="lower")
    hi = np.percentile(distances, PERCENTILES[1], method="higher")
    return float(distances[(distances >= lo) & (distances <= hi)].mean())


def interpolation_t(ev: Evaluation, pairs: range, count: int, sampling: str) -> torch.Tensor:
    """t [len(pairs)] on the device for pairs `pairs` out of `count` (see the module docstring)."""
    g = randomness.generator(ev.seed, "ppl-t")
    t = torch.rand(count, generator=g) if sampling == "full" else torch.randint(0, 2, (count,), generator=g).float()
    return t[pairs.start:pairs.stop].to(ev.device, ev.model.w_avg.dtype)


@torch.no_grad()
def pair_distances(ev: Evaluation, pairs: range, count: int, sampling: str, lpips) -> torch.Tensor:
    """LPIPS / ε² [len(pairs)] of pairs `pairs` out of `count` (see the module docstring)."""
    model = ev.model
    w0, w1 = model.map(latents(ev, pairs, "ppl-z0")), model.map(latents(ev, pairs, "ppl-z1"))
    t = interpolation_t(ev, pairs, count, sampling)[:, None]
    w = torch.cat([torch.lerp(w0, w1, t), torch.lerp(w0, w1, t + PPL_EPSILON)])
    noise = randomness.per_sample_noise(model.G.noise_shapes(ev.lod), pairs, ev.device, ev.seed, "ppl-noise")
    images = model.generate(model.broadcast(w), ev.lod, ev.alpha, [torch.cat([m, m]) for m in noise])
    images = downscale_for_vgg(face_crop(images))
    return lpips(images[:len(pairs)], images[len(pairs):]) / PPL_EPSILON**2


def ppl(ev: Evaluation, name: str, count: int, sampling: str) -> Figures:
    """PPL over `count` pairs with t sampled at the endpoints ('end') or uniformly ('full')."""
    lpips, parts = ev.lpips(), []
    bar = ev.progress(len(ev.my_shard(range(count))), name)
    for pairs in ev.chunks(range(count)):
        parts.append(pair_distances(ev, pairs, count, sampling, lpips).double())
        bar.update(len(pairs))
    bar.close()
    distances = gather_rows(torch.cat(parts), count, ev.ctx)
    value = None if distances is None else filtered_mean(distances.numpy())
    return Figures(value, {"pairs": count}, {"epsilon": PPL_EPSILON, "crop": "face"})
