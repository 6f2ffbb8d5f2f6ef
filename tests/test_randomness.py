"""Draws depend on the global sample index only: splitting a batch over ranks changes nothing."""
import random

import pytest
import torch

from alae import randomness


def test_global_normal_rows_equal_slices_of_the_full_draw():
    full = randomness.global_normal((8, 5), slice(None), 0, 7, "z")
    assert torch.equal(torch.cat([randomness.global_normal((8, 5), slice(r * 2, r * 2 + 2), 0, 7, "z")
                                  for r in range(4)]), full)
    assert not torch.equal(full, randomness.global_normal((8, 5), slice(None), 0, 8, "z"))
    assert not torch.equal(full, randomness.global_normal((8, 5), slice(None), 0, 7, "w"))


def test_per_sample_noise_is_independent_of_how_the_batch_is_split():
    shapes = [(1, 4, 4), (1, 8, 8)]
    whole = randomness.per_sample_noise(shapes, range(0, 6), torch.device("cpu"), 1, 2, "g")
    parts = [randomness.per_sample_noise(shapes, range(s, s + 3), torch.device("cpu"), 1, 2, "g") for s in (0, 3)]
    for k in range(len(shapes)):
        assert whole[k].shape == (6, *shapes[k])
        assert torch.equal(whole[k], torch.cat([parts[0][k], parts[1][k]]))
    assert not torch.equal(whole[0][0], whole[0][1])


def test_crossover_layers_respect_probability_and_range():
    none = randomness.crossover_layers(1000, slice(None), 6, 0.0, 0, "m")
    assert torch.all(none == 6)
    always = randomness.crossover_layers(1000, slice(None), 6, 1.0, 0, "m")
    assert always.min() >= 1 and always.max() <= 5 and len(set(always.tolist())) == 5
    some = randomness.crossover_layers(4000, slice(None), 6, 0.9, 0, "m")
    assert abs((some < 6).float().mean().item() - 0.9) < 0.03
    assert torch.all(randomness.crossover_layers(50, slice(None), 1, 1.0, 0, "m") == 1)  # nothing to mix at 1 layer


def test_per_batch_crossover_is_one_draw_for_the_batch_at_the_original_rate():
    """The original's rule: with probability p one cutoff randint(1, L) inclusive for all samples;
    cutoff L mixes nothing, so the batch mixes with probability p·(1 − 1/L) (closed form)."""
    active, p, steps = 6, 0.9, 4000
    draws = [randomness.crossover_layers(8, slice(None), active, p, 0, step, "m", per_batch=True) for step in range(steps)]
    assert all(torch.all(d == d[0]) for d in draws)  # one decision per batch
    cuts = torch.stack([d[0] for d in draws])
    assert cuts.min() >= 1 and cuts.max() == active and len(set(cuts.tolist())) == active
    assert abs((cuts < active).float().mean().item() - p * (1 - 1 / active)) < 0.02
    halves = randomness.crossover_layers(8, slice(4, 8), active, p, 0, 3, "m", per_batch=True)
    assert torch.equal(halves, draws[3][4:])  # the same on every rank


def test_derive_seed_is_stable_and_distinct():
    assert randomness.derive_seed(1, "a", 2) == randomness.derive_seed(1, "a", 2)
    assert len({randomness.derive_seed(1, "a", i) for i in range(100)}) == 100
    assert 0 <= randomness.derive_seed(5) < 2**63


def test_derive_seeds_mixes_the_same_seeds_as_seedsequence_for_every_index():
    """derive_seeds writes SeedSequence's arithmetic out over arrays; the reference is numpy's
    SeedSequence itself (through derive_seed), on prefixes of every kind: none, zero, names,
    integers of one and of several 32-bit words."""
    rng = random.Random(0)
    kinds = [lambda: 0, lambda: rng.randrange(100), lambda: rng.randrange(2**32), lambda: rng.randrange(2**96),
             lambda: rng.choice(["d", "g", "latent", "noise", "z1", "eta"])]
    for _ in range(300):
        prefix = [rng.choice(kinds)() for _ in range(rng.randrange(0, 7))]
        indices = [0, 1, 2**32 - 1, *(rng.randrange(2**32) for _ in range(rng.randrange(0, 6)))]
        assert randomness.derive_seeds(prefix, indices) == [randomness.derive_seed(*prefix, i) for i in indices]
    assert randomness.derive_seeds([1, "a"], range(0)) == []
    with pytest.raises(ValueError, match="below 2"):
        randomness.derive_seeds([1], [2**32])


def test_per_sample_noise_seeds_each_sample_by_its_index():
    """Each sample's maps are those of a generator seeded by derive_seed(*parts, index), by hand."""
    shapes, indices = [(2, 4, 4), (1, 8, 8)], [5, 9, 3]
    maps = randomness.per_sample_noise(shapes, indices, torch.device("cpu"), 7, 11, "g", "noise")
    for row, index in enumerate(indices):
        g = torch.Generator().manual_seed(randomness.derive_seed(7, 11, "g", "noise", index))
        for k, shape in enumerate(shapes):
            assert torch.equal(maps[k][row], torch.randn(shape, generator=g))


def test_no_noise_shapes_draw_nothing(monkeypatch):
    monkeypatch.setattr(randomness, "derive_seeds", None)  # would fail if any seed were mixed
    assert randomness.per_sample_noise([], range(128), torch.device("cpu"), 0, 1, "vae", "noise") == []
