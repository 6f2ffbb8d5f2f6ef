"""A run's picture of itself: PNG grids (and TensorBoard images) of EMA samples and held-out reconstructions.

`samples/samples-KIMG.png`: grid_size × grid_size images from fixed latents, truncated as for
evaluation. `samples/reconstructions-KIMG.png`: the held-out originals in the first row and
their reconstructions below. Images are shown at the model's full resolution (nearest
upsampling while training at a lower lod) so grids from any point in training line up.
"""
from __future__ import annotations

from pathlib import Path

import torch

import alae.randomness as randomness
from alae.files import save_image
from alae.grids import grid_uint8
from alae.metrics.reconstruction import to_full_resolution


@torch.no_grad()
def save_grids(ema, grid_z: torch.Tensor, originals: torch.Tensor, reconstructions: torch.Tensor, phase, cfg,
               samples_dir: Path, kimg: float, writer=None) -> None:
    """grid_z: [grid², latent]; originals, reconstructions: [n, C, R, R] in [−1, 1] (any resolution)."""
    t, full = cfg.train, cfg.model.resolution
    noise = randomness.per_sample_noise(ema.G.noise_shapes(phase.lod), range(len(grid_z)), grid_z.device,
                                        t.seed, "grid_noise")
    samples = ema.sample(grid_z, phase.lod, phase.alpha, psi=t.truncation_psi, cutoff=t.truncation_cutoff, noise=noise)
    pairs = torch.cat([originals, reconstructions])
    sample_grid = grid_uint8(to_full_resolution(samples, full), cfg.log.grid_size)
    recon_grid = grid_uint8(to_full_resolution(pairs, full), len(originals))
    save_image(sample_grid, samples_dir / f"samples-{kimg:08.1f}kimg.png")
    save_image(recon_grid, samples_dir / f"reconstructions-{kimg:08.1f}kimg.png")
    if writer is not None:
        step = int(round(kimg * 1000))
        writer.add_image("samples", sample_grid, step)
        writer.add_image("reconstructions", recon_grid, step)
