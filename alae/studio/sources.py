"""The faces alae-studio starts from: an image file, encoded as alae-edit encodes it, or a seed.

    spec = SourceSpec.image("me.png", shown="me.png", align=True, refine=100, noise="const")
    source = load_source(model, spec, landmarker, device, on_step)   # wplus [L, latent], key, pixels

An image goes through `alae.latents.inversion.invert_batches` alone (key 0: the first input of
alae-edit, alae-reconstruct and alae-mix), so its latents are those the command-line tools
compute for the same file and options; a photo with several faces gives its first (left-most).
A seed is mapped and truncated by `alae.latents.endpoints.seed_endpoints` (key: the seed), as
the tools' seeds are. `pixels` is what the studio shows as the input: the image as encoded
(the aligned crop with align), or for a seed its own decoded image.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from alae.cli import ToolError
from alae.datasets import to_uint8
from alae.latents.endpoints import seed_endpoints
from alae.latents.image_inputs import gather_images
from alae.latents.inversion import invert_batches
from alae.latents.projection import RefineSettings
from alae.latents.synthesis import synthesize


@dataclass(frozen=True)
class SourceSpec:
    """What a source is, hashable (the studio caches sources by it).

    kind "image": `path` is the file read, `shown` how a command line names it (the path, or
    the name of an uploaded file), align / refine (Adam steps) / noise (the noise refinement
    runs with; ignored without refinement) as alae-edit's options. kind "seed": `seed`, with
    truncation psi on the first `cutoff` style layers as alae-mix's seeds.
    """

    kind: str
    path: str = ""
    shown: str = ""
    align: bool = False
    refine: int = 0
    noise: str = "const"
    seed: int = 0
    psi: float = 1.0
    cutoff: int = 0

    @staticmethod
    def image(path: str | Path, shown: str, align: bool = False, refine: int = 0, noise: str = "const") -> "SourceSpec":
        return SourceSpec("image", str(path), shown, align, int(refine), noise if refine else "const")

    @staticmethod
    def from_seed(seed: int, psi: float, cutoff: int) -> "SourceSpec":
        return SourceSpec("seed", seed=int(seed), psi=float(psi), cutoff=int(cutoff), shown=f"seed {int(seed)}")

    @property
    def label(self) -> str:
        return self.shown


@dataclass
class Source:
    """A loaded source: `name` (the image's name in the tools' outputs, e.g. face or face_00 when
    aligned; `seed N`), wplus [L, latent] on the device, its noise key, pixels uint8 [R, R, 3] or [R, R]
    (what the page shows as the input), notes (one line each: a centre crop, other faces...)."""

    spec: SourceSpec
    name: str
    wplus: torch.Tensor
    key: int
    pixels: np.ndarray
    notes: list[str]


def picture_array(images: torch.Tensor) -> np.ndarray:
    """uint8 [1, C, R, R] → numpy [R, R, 3] (colour) or [R, R] (grey): what the page and PNG files show."""
    picture = images[0].permute(1, 2, 0).cpu().numpy()
    return picture[:, :, 0] if picture.shape[2] == 1 else picture


def load_source(model, spec: SourceSpec, landmarker, device: torch.device, on_step=None) -> Source:
    """The Source for `spec` (module docstring). `landmarker` is needed when spec.align;
    `on_step(step, losses)` follows refinement. ToolError (one line) when the image gives no face."""
    if spec.kind == "seed":
        (endpoint,) = seed_endpoints([spec.seed], model, spec.psi, spec.cutoff, device)
        image = to_uint8(synthesize(model, endpoint.wplus[None], [endpoint.key], "const", device))
        return Source(spec, endpoint.label, endpoint.wplus, endpoint.key, picture_array(image), [])
    (ref,) = gather_images([spec.path], model.resolution)
    settings = RefineSettings(steps=spec.refine)
    batch = next(invert_batches(model, [ref], 1, landmarker if spec.align else None, settings, spec.noise, device,
                                on_step))
    if not batch.names:
        reason = batch.skipped[0][1] if batch.skipped else "no image"
        raise ToolError(f"{spec.shown}: {reason}")
    notes = [f"{name}: {note}" for name, note in batch.notes]
    if len(batch.names) > 1:
        notes.append(f"{spec.shown} has {len(batch.names)} faces: the studio edits the first ({batch.names[0]})")
    name = str(PurePosixPath(batch.names[0]).with_suffix("")) if not spec.align else batch.names[0]
    return Source(spec, name, batch.wplus[0].contiguous(), batch.keys[0], picture_array(batch.pixels[:1]), notes)
