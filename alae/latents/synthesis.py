"""Images from W+ latents at the model's full resolution, each with the noise of its key.

Shared by the tools that draw edited, mixed or interpolated latents, so an image's noise is the
same in every tool (`alae.latents.noise`).
"""
from __future__ import annotations

import torch

from alae.latents.noise import noise_inputs


@torch.no_grad()
def synthesize(model, wplus: torch.Tensor, keys: list[int], noise_mode: str, device: torch.device,
               batch: int = 8) -> torch.Tensor:
    """Images [n, C, R, R] in [−1, 1] (on the device) from W+ [n, L, latent] at full resolution,
    image i with the noise of `keys[i]`, `batch` at a time."""
    lod = model.num_lods - 1
    out = []
    for first in range(0, len(wplus), batch):
        chunk = keys[first:first + batch]
        noise = noise_inputs(model, lod, noise_mode, chunk, device)
        out.append(model.generate(wplus[first:first + batch].to(device), lod, 1.0, noise))
    return torch.cat(out)
