"""Latents from seeds, as StyleGAN2-ADA draws them: z for seed s is `RandomState(s).randn(latent)`.

Drawn on the CPU, so a seed gives the same z on any device and in any batch.
"""
from __future__ import annotations

import numpy as np
import torch


def latents_for_seeds(seeds: list[int], latent_dim: int) -> torch.Tensor:
    """z [len(seeds), latent_dim] float32 on the CPU: row i = RandomState(seeds[i]).randn(latent_dim)."""
    return torch.from_numpy(np.stack([np.random.RandomState(s).randn(latent_dim) for s in seeds])).float()
