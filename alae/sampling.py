"""Reproducible inputs for the tools: latents from seeds, noise maps by mode, the compute device.

Everything random is drawn on the CPU from a generator seeded by what it is for, then moved to
the device, so a seed gives the same image on any device and in any batch (up to float
rounding). z for seed s is `numpy.random.RandomState(s).randn(latent)`, as in StyleGAN2-ADA.
"""
from __future__ import annotations

import numpy as np
import torch

from alae import randomness
from alae.cli import ToolError
from alae.layers import DETERMINISTIC_NOISE

# random: maps drawn per image (from its seed or index); const: one fixed set of maps for every
# image; none: no noise; deterministic: the original ALAE generator's noise=False substitute.
NOISE_MODES = ("random", "const", "none", DETERMINISTIC_NOISE)
CONST_NOISE_KEY = 0


def resolve_device(name: str) -> torch.device:
    """'auto' → cuda if available else cpu; 'cuda' without a GPU is a ToolError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ToolError("--device cuda: no CUDA device is available (use --device cpu)")
    return torch.device(name)


def latents_for_seeds(seeds: list[int], latent_dim: int) -> torch.Tensor:
    """z [len(seeds), latent_dim] float32 on the CPU: row i = RandomState(seeds[i]).randn(latent_dim)."""
    return torch.from_numpy(np.stack([np.random.RandomState(s).randn(latent_dim) for s in seeds])).float()


def noise_inputs(model, lod: int, mode: str, keys: list[int], device: torch.device):
    """What `model.generate(..., noise=...)` takes for a batch whose images are identified by
    `keys` (seeds or input indices): per-image maps for 'random', the same maps for every image
    for 'const', or the mode itself for 'none' and 'deterministic'."""
    if mode not in NOISE_MODES:
        raise ToolError(f"--noise must be one of {', '.join(NOISE_MODES)}, got {mode!r}")
    if mode in ("none", DETERMINISTIC_NOISE):
        return mode
    if mode == "const":
        keys = [CONST_NOISE_KEY] * len(keys)
    maps = randomness.per_sample_noise(model.G.noise_shapes(lod), keys, torch.device("cpu"), "tool-noise", mode)
    return [m.to(device) for m in maps]


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
