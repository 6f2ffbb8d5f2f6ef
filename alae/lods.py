"""Levels of detail: lod 0 is 4×4 pixels and each lod doubles the side, so lod i is 4·2^i.

The one place the lod ↔ resolution relation is written down; configs, schedules and networks
ask here.
"""
from __future__ import annotations

BASE_RESOLUTION = 4  # the learned constant of G and the last block of E are 4×4 (original)


def resolution_of(lod: int) -> int:
    """Image side length at a level of detail: 4·2^lod."""
    return BASE_RESOLUTION << lod


def num_lods(resolution: int) -> int:
    """How many lods a model of this (power-of-two) resolution has: 4 px → 1, 1024 px → 9."""
    return resolution.bit_length() - BASE_RESOLUTION.bit_length() + 1
