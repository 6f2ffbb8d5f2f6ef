"""Parzen-window log-likelihood of held-out images under generated samples (Goodfellow et al. 2014,
Makhzani et al. 2015; the protocol of Goodfellow's parzen_ll.py).

Images are flattened to d = C·R·R values in [0, 1] (8-bit pixels / 255; generated images are
rounded to 8 bits first, as for FID). The density fitted to m generated samples μ_j is

    p(x) = (1/m) Σ_j N(x; μ_j, σ²·I),
    log p(x) = logsumexp_j(−‖x − μ_j‖² / (2σ²)) − log m − (d/2)·log(2πσ²)   (nats),

computed in float64 with the squared distances ‖x‖² + ‖μ‖² − 2⟨x, μ⟩ (clamped at 0), in
blocks of held-out images. σ is the value of `SIGMA_GRID` with the highest mean log-likelihood
of the validation images (the last `VALIDATION_IMAGES` of the training part, disjoint from the
held-out test images; splits.py); the result is the mean log-likelihood of the held-out images
with its standard error std/√n (numpy's std, as parzen_ll.py), both in the details.

- parzen_ll: m = `PARZEN_SAMPLES` generated images; parzen_ll{N}k: m = N·1000. Generated image
  i is `generation.generated_images`' image i (seeded by (seed, "metric-z", i)).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from alae.metrics import splits
from alae.metrics.evaluation import Evaluation
from alae.metrics.generation import generated_images
from alae.metrics.results import Figures
from alae.metrics.sharding import gather_rows

PARZEN_SAMPLES = 10_000  # the GAN and AAE papers' Parzen estimates use 10k generated samples
SIGMA_GRID = tuple(float(s) for s in np.logspace(-1, 0, 10))  # parzen_ll.py: logspace(sigma_start=-1, sigma_end=0, cross_val=10)
VALIDATION_IMAGES = 1000  # ours (parzen_ll.py used MNIST's 10k validation digits)
BLOCK = 64  # images per block of distances (memory: BLOCK × m float64)


def parzen_log_likelihoods(x: torch.Tensor, samples: torch.Tensor, sigma: float) -> torch.Tensor:
    """log p(x_i) in nats, float64 [n], of points x [n, d] under the Gaussian Parzen window of
    width `sigma` on samples [m, d] (module docstring)."""
    x, samples = x.double(), samples.double()
    m, d = samples.shape
    sample_norms = samples.square().sum(dim=1)
    parts = []
    for block in x.split(BLOCK):
        squared = (block.square().sum(dim=1)[:, None] + sample_norms[None, :] - 2 * block @ samples.T).clamp_min(0)
        parts.append(torch.logsumexp(-squared / (2 * sigma**2), dim=1))
    log_kernel_sum = torch.cat(parts) if parts else x.new_zeros(0)
    return log_kernel_sum - math.log(m) - d / 2 * math.log(2 * math.pi * sigma**2)


def select_sigma(validation: torch.Tensor, samples: torch.Tensor, grid=SIGMA_GRID) -> tuple[float, list[float]]:
    """(the σ of `grid` with the highest mean log-likelihood of validation [n, d], every σ's mean)."""
    means = [parzen_log_likelihoods(validation, samples, sigma).mean().item() for sigma in grid]
    return grid[int(np.argmax(means))], means


def _flat01(images: torch.Tensor) -> torch.Tensor:
    """uint8 images [N, C, R, R] → float64 [N, C·R·R] in [0, 1]."""
    return images.flatten(1).double() / 255


def _database_pixels(ev: Evaluation, indices: range) -> torch.Tensor:
    return torch.cat([_flat01(images.cpu()) for _, images in ev.image_batches(indices, ev.resolution)])


def _generated_pixels(ev: Evaluation, count: int) -> torch.Tensor:
    return torch.cat([_flat01(generated_images(ev, keys, count).cpu()) for keys in ev.chunks(range(count))])


def parzen_ll(ev: Evaluation, name: str, count: int) -> Figures:
    train, test = splits.split(ev)
    validation = train[-VALIDATION_IMAGES:]
    samples = gather_rows(_generated_pixels(ev, count), count, ev.ctx)
    validation_x = gather_rows(_database_pixels(ev, validation), len(validation), ev.ctx)
    test_x = gather_rows(_database_pixels(ev, test), len(test), ev.ctx)
    images = {"generated": count, "validation": len(validation), "held_out": len(test)}
    if samples is None:
        return Figures(None, images)
    sigma, means = select_sigma(validation_x, samples)
    ll = parzen_log_likelihoods(test_x, samples, sigma).numpy()
    details = {"holdout": ev.holdout, "sigma": sigma, "standard_error": float(ll.std() / math.sqrt(len(ll))),
               "sigma_grid": list(SIGMA_GRID), "validation_mean_ll": means}
    return Figures(float(ll.mean()), images, details)
