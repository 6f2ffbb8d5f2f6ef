"""Latents from seeds. From a Gaussian prior as StyleGAN2-ADA draws them: z for seed s is
`std · RandomState(s).randn(latent)`; from any other prior (alae.priors), one sample of a torch
generator seeded with s.

Drawn on the CPU, so a seed gives the same z on any device and in any batch.
"""
from __future__ import annotations

import numpy as np
import torch

from alae.priors import GaussianPrior, Prior


def latents_for_seeds(seeds: list[int], prior: Prior) -> torch.Tensor:
    """z [len(seeds), prior.dim] float32 on the CPU, row i drawn from seed seeds[i] (module docstring)."""
    if isinstance(prior, GaussianPrior):
        z = np.stack([np.random.RandomState(s).randn(prior.dim) for s in seeds]) * prior.std
        return torch.from_numpy(z).float()
    return torch.cat([prior.sample(1, torch.Generator().manual_seed(s)) for s in seeds])
