"""Random draws that depend on (seed, step, purpose, global sample index), never on the rank.

Training on N processes with batch b each must see the same latents, style-mixing choices and
noise maps as one process with batch N·b, and a resumed run must see the same draws as an
uninterrupted one. So every draw is made from a generator seeded by what it is for: the run
seed, the optimizer step, named parts (the ALAE step uses its step's name, "d", "g" or
"latent", then what is drawn, "z1", "z2", "mix", "noise" or "noise0") and, for per-sample
draws, the sample's index in the global batch. No RNG state has to be carried across steps.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed mixed from integers and names (stable across processes and Python runs)."""
    entropy = [p if isinstance(p, int) else zlib.crc32(p.encode()) for p in parts]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> 1)


def generator(*parts: int | str, device: torch.device | str = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(*parts))
    return g


def global_normal(shape: tuple[int, ...], rows: slice, *parts: int | str) -> torch.Tensor:
    """Draw a [global_batch, ...] standard-normal tensor on the CPU and return `rows` of it."""
    return torch.randn(shape, generator=generator(*parts))[rows]


def crossover_layers(global_batch: int, rows: slice, num_active: int, prob: float, *parts: int | str,
                     per_batch: bool = False) -> torch.Tensor:
    """Style-mixing crossover per sample: a layer in [1, num_active) with probability `prob`, else
    `num_active` (no mixing). Returns the `rows` slice as int64 [len(rows)].

    per_batch: the original code's rule instead: one draw for the whole batch, mixing with
    probability `prob` at a cutoff randint(1, num_active) inclusive, where the cutoff
    num_active mixes nothing (an effective rate of prob·(1 − 1/num_active)).
    """
    g = generator(*parts)
    if per_batch:
        mix = bool(torch.rand(1, generator=g) < prob) and num_active >= 2
        cut = int(torch.randint(1, num_active + 1, (1,), generator=g))
        return torch.full((global_batch,), cut if mix else num_active, dtype=torch.int64)[rows]
    mix = torch.rand(global_batch, generator=g) < prob
    cut = torch.randint(1, max(num_active, 2), (global_batch,), generator=g)
    if num_active < 2:
        mix[:] = False
    return torch.where(mix, cut, torch.full_like(cut, num_active))[rows]


def per_sample_noise(
    shapes: list[tuple[int, int, int]], indices: Sequence[int], device: torch.device, *parts: int | str
) -> list[torch.Tensor]:
    """Noise maps for samples with global `indices`: one [len(indices), C, H, W] tensor per shape,
    each sample's maps drawn from a generator seeded by its index (equal indices, equal maps)."""
    g = torch.Generator(device=device)
    per_sample = []
    for i in indices:
        g.manual_seed(derive_seed(*parts, i))
        per_sample.append([torch.randn(shape, generator=g, device=device) for shape in shapes])
    return [torch.stack([maps[k] for maps in per_sample]) for k in range(len(shapes))]
