"""PNG grids (and TensorBoard images) of EMA samples and of held-out reconstructions.

`samples/samples-KIMG.png`: grid_size × grid_size images from fixed latents, truncated as for
evaluation. `samples/reconstructions-KIMG.png`: the held-out originals in the first row and
their reconstructions below. Images are shown at the model's full resolution (nearest
upsampling while training at a lower lod) so grids from any point in training line up.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from alae import randomness
from alae.datasets import to_uint8
from alae.files import save_image


def to_full_resolution(x: torch.Tensor, resolution: int) -> torch.Tensor:
    return F.interpolate(x, size=(resolution, resolution), mode="nearest") if x.shape[-1] < resolution else x


def grid_uint8(images: torch.Tensor, nrow: int) -> torch.Tensor:
    """[N, C, R, R] in [−1, 1] → uint8 [C, H, W] grid with 1-pixel gaps."""
    return to_uint8(make_grid(images.float().clamp(-1, 1), nrow=nrow, padding=1, pad_value=-1.0).unsqueeze(0))[0]


def row_groups_grid(rows: list[torch.Tensor], columns: int) -> torch.Tensor:
    """Aligned rows, e.g. [originals, reconstructions]: each [n, C, R, R] in [−1, 1]. Images are
    cut into groups of `columns`; each group shows one row per tensor (originals above their
    reconstructions), groups stacked downwards; gaps filled black. → uint8 [C, H, W]."""
    n = rows[0].shape[0]
    columns = max(1, min(columns, n))
    groups = -(-n // columns)
    padded = [torch.cat([r, r.new_full((groups * columns - n, *r.shape[1:]), -1.0)]) for r in rows]
    tiles = torch.stack([p.view(groups, columns, *p.shape[1:]) for p in padded], dim=1)  # [G, rows, cols, C, R, R]
    return grid_uint8(tiles.flatten(0, 2), columns)


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
