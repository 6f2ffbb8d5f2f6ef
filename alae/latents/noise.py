"""The generator's noise maps for the tools, by mode, reproducible per image key.

Maps are drawn on the CPU from a generator seeded by what they are for and the image's key (its
seed, or its index among the inputs), then moved to the device, so a key gives the same maps on
any device and in any batch.
"""
from __future__ import annotations

import torch

import alae.randomness as randomness
from alae.cli import ToolError
from alae.networks.layers import DETERMINISTIC_NOISE

# random: maps drawn per image (from its seed or index); const: one fixed set of maps for every
# image; none: no noise; deterministic: the original ALAE generator's noise=False substitute.
NOISE_MODES = ("random", "const", "none", DETERMINISTIC_NOISE)
CONST_NOISE_KEY = 0


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
