"""Real images to latents, batch by batch: read, (align,) encode, (refine).

    for batch in invert_batches(model, refs, batch_size=8, landmarker=None, settings=RefineSettings(200),
                                noise_mode="const", device=device):
        batch.wplus   # [n, layers, latent]: the encoder's w on every layer, or the refined W+

Shared by alae-reconstruct, alae-edit, alae-mix and alae-interpolate, so an image gets the same
latents from each. Images are read lazily, `batch_size` at a time, so any number of inputs fits
in memory. Each image has a key (its position among the images read so far) that seeds its
noise maps: `noise_inputs(model, lod, noise_mode, batch.keys, device)` gives back the noise its
latents were refined with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from alae.datasets import to_model_range
from alae.latents.image_inputs import ImageRef, load_images
from alae.latents.noise import noise_inputs
from alae.latents.projection import RefineSettings, refine_wplus


@dataclass
class InvertedBatch:
    """names [n]; images [n, C, R, R] in [−1, 1] on the device; pixels uint8 [n, C, R, R] (CPU) as
    read (aligned crops with --align); origins [n]: the index into `refs` each image came from;
    keys [n] (noise keys); w [n, latent] (encoder); wplus
    [n, L, latent] (refined, or w broadcast); refined: whether refinement ran; skipped and notes
    as in alae.latents.image_inputs.LoadedImages."""

    names: list[str]
    images: torch.Tensor
    pixels: torch.Tensor
    origins: list[int]
    keys: list[int]
    w: torch.Tensor
    wplus: torch.Tensor
    refined: bool
    skipped: list[tuple[str, str]]
    notes: list[tuple[str, str]]

    @property
    def inputs(self) -> int:
        """How many refs this batch consumed (a photo may give several faces, or none)."""
        return len(set(self.origins)) + len(self.skipped)


def invert_batches(model, refs: list[ImageRef], batch_size: int, landmarker, settings: RefineSettings,
                   noise_mode: str, device: torch.device, on_step=None, first_key: int = 0) -> Iterator[InvertedBatch]:
    """Latents of every readable image in `refs` at the model's full resolution (see module
    docstring); `on_step(step, losses)` follows refinement; keys count from `first_key`.
    Batches with no readable image yield only their skipped entries (names empty)."""
    lod = model.num_lods - 1
    resolution = model.resolution
    count = first_key
    for first in range(0, len(refs), batch_size):
        loaded = load_images(refs[first:first + batch_size], resolution, landmarker, model.image_channels)
        keys = list(range(count, count + len(loaded.names)))
        count += len(keys)
        images = to_model_range(loaded.pixels.to(device))
        with torch.no_grad():
            w = model.encode(images, lod, 1.0) if keys else images.new_zeros(0, model.w_avg.shape[0])
        wplus = model.broadcast(w).contiguous()
        if settings.steps and keys:
            noise = noise_inputs(model, lod, noise_mode, keys, device)
            wplus = refine_wplus(model, images, wplus, lod, noise, settings, on_step)
        yield InvertedBatch(loaded.names, images, loaded.pixels, [first + i for i in loaded.origins], keys, w, wplus,
                            bool(settings.steps), loaded.skipped, loaded.notes)
