"""Random draws that depend on (seed, step, purpose, global sample index), never on the rank.

Training on N processes with batch b each must see the same latents, style-mixing choices and
noise maps as one process with batch N·b, and a resumed run must see the same draws as an
uninterrupted one. So every draw is made from a generator seeded by what it is for: the run
seed, the optimizer step, named parts (the ALAE step uses its step's name, "d", "g" or
"latent", then what is drawn, "z1", "z2", "mix", "noise" or "noise0") and, for per-sample
draws, the sample's index in the global batch. No RNG state has to be carried across steps.

Seeds are mixed by numpy's SeedSequence (`derive_seed`); the seeds of many samples that differ
only in their index are mixed together by `derive_seeds`, SeedSequence's arithmetic written out
over numpy arrays: the same seeds (tested against SeedSequence), without a SeedSequence per sample.
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


# SeedSequence's constants (numpy/random/bit_generator.pyx; O'Neill's seed_seq_fe): a pool of 4
# 32-bit words, hashed in with multiplier A, mixed pairwise, read out with multiplier B.
_POOL_SIZE = 4
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = np.uint64(0xCA01F9DD), np.uint64(0x4973F715)
_MASK32, _SHIFT = np.uint64(0xFFFFFFFF), np.uint64(16)


def _words(part: int | str) -> list[int]:
    """A part as SeedSequence reads an integer of its entropy: 32-bit words, least significant first."""
    n = part if isinstance(part, int) else zlib.crc32(part.encode())
    if n < 0:
        raise ValueError(f"seed parts must be non-negative, got {n}")
    words = [n & 0xFFFFFFFF]
    while n > 0xFFFFFFFF:
        n >>= 32
        words.append(n & 0xFFFFFFFF)
    return words


def derive_seeds(prefix: Sequence[int | str], indices: Sequence[int]) -> list[int]:
    """[derive_seed(*prefix, i) for i in indices], mixed together over numpy arrays (indices < 2^32)."""
    index = np.asarray(indices, dtype=np.uint64)
    if index.size and int(index.max()) > 0xFFFFFFFF:
        raise ValueError("derive_seeds takes indices below 2^32")
    entropy = [np.uint64(w) for part in prefix for w in _words(part)] + [index]
    hash_const = _INIT_A

    def hashmix(value):
        nonlocal hash_const
        value = value ^ np.uint64(hash_const)
        hash_const = hash_const * _MULT_A & 0xFFFFFFFF
        value = value * np.uint64(hash_const) & _MASK32
        return value ^ (value >> _SHIFT)

    def mix(x, y):
        result = (_MIX_MULT_L * x - _MIX_MULT_R * y) & _MASK32  # wraps mod 2^64, a multiple of 2^32
        return result ^ (result >> _SHIFT)

    with np.errstate(over="ignore"):
        pool = [hashmix(entropy[i] if i < len(entropy) else np.uint64(0)) for i in range(_POOL_SIZE)]
        for src in range(_POOL_SIZE):
            for dst in range(_POOL_SIZE):
                if src != dst:
                    pool[dst] = mix(pool[dst], hashmix(pool[src]))
        for src in range(_POOL_SIZE, len(entropy)):
            for dst in range(_POOL_SIZE):
                pool[dst] = mix(pool[dst], hashmix(entropy[src]))
        words, out_const = [], _INIT_B
        for i in range(2):  # generate_state(1, uint64): two 32-bit words, little-endian
            value = pool[i] ^ np.uint64(out_const)
            out_const = out_const * _MULT_B & 0xFFFFFFFF
            value = value * np.uint64(out_const) & _MASK32
            words.append(np.broadcast_to(value ^ (value >> _SHIFT), index.shape))
    return ((words[0] | (words[1] << np.uint64(32))) >> np.uint64(1)).tolist()


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
    each sample's maps drawn from a generator seeded by its index (equal indices, equal maps).
    No shapes (the MLP networks have no noise inputs): nothing to draw, no seeds mixed."""
    if not shapes:
        return []
    g = torch.Generator(device=device)
    per_sample = []
    for seed in derive_seeds(parts, indices):
        g.manual_seed(seed)
        per_sample.append([torch.randn(shape, generator=g, device=device) for shape in shapes])
    return [torch.stack([maps[k] for maps in per_sample]) for k in range(len(shapes))]
