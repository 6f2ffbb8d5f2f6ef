"""Latents named on a command line: real images (encoded, optionally aligned and refined) or seeds.

    alae-mix MODEL --rows photo.png 12 --cols 3-5 faces/ ...

A token that names an existing path is images (a file, a folder, a zip, an LMDB: every image
in it, in order); otherwise a token such as `12`, `3-5` or `1,4,9` is seeds, mapped through F
and truncated toward w_avg like alae-generate. Each endpoint carries the W+ latents [L, latent]
its outputs start from and the noise key its images are drawn with.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from alae.cli import ToolError, parse_int_ranges, warn
from alae.latents.image_inputs import gather_images
from alae.latents.inversion import invert_batches
from alae.latents.seeds import latents_for_seeds

SEED_TOKEN = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")


@dataclass
class Endpoint:
    """label: the image's name or `seed N`; wplus [L, latent] on the device; key: its noise key."""

    label: str
    wplus: torch.Tensor
    key: int


def is_seed_token(token: str) -> bool:
    return not Path(token).expanduser().exists() and SEED_TOKEN.fullmatch(token) is not None


def seed_endpoints(seeds: list[int], model, psi: float, cutoff: int, device: torch.device) -> list[Endpoint]:
    """Endpoints for seeds: z from each seed (latents_for_seeds), mapped through F and broadcast to
    W+, truncated toward w_avg by psi on the first `cutoff` style layers (psi 1: none); key = seed."""
    with torch.no_grad():
        styles = model.broadcast(model.map(latents_for_seeds(seeds, model.prior).to(device)))
        if psi != 1:
            styles = model.truncate(styles, psi, cutoff)
    return [Endpoint(f"seed {s}", styles[i].contiguous(), s) for i, s in enumerate(seeds)]


def resolve_endpoints(tokens: list[str], model, args, holdout: int, landmarker, settings, device: torch.device,
                      prog: str) -> list[Endpoint]:
    """Endpoints for `tokens` in order (see the module docstring). `args` carries the inversion
    options (alae.latents.options) and psi/cutoff for seeds."""
    endpoints: list[Endpoint] = []
    next_key = 0
    for token in tokens:
        if is_seed_token(token):
            endpoints += seed_endpoints(parse_int_ranges(token, "seeds"), model, args.psi, args.cutoff, device)
            continue
        refs = gather_images([token], model.resolution, holdout, args.lmdb_split)
        found = 0
        for batch in invert_batches(model, refs, args.batch, landmarker, settings, args.noise, device,
                                    first_key=next_key):
            for name, reason in batch.skipped:
                warn(prog, f"skipped {name}: {reason}")
            endpoints += [Endpoint(name, batch.wplus[i], batch.keys[i])
                          for i, name in enumerate(batch.names)]
            found += len(batch.names)
            next_key += len(batch.names)
        if not found:
            raise ToolError(f"{token} gave no image to encode")
    return endpoints
