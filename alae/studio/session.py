"""The studio's model-side state, shared by every browser tab: the networks, the directions, the
images offered, and caches so a slider move only decodes.

    studio = Studio(model, device, "runs/demo", directions, images)
    first = studio.source(SourceSpec.image("me.png", "me.png"))     # encoded once, then cached
    picture = studio.render(wplus, first.key, "const")               # uint8 [R, R, C], cached

A slider move changes only the view (alae.studio.view): the sources it uses come from the
source cache (no encoding, alignment or refinement again) and only the edited image is decoded;
the input and reconstruction panels are drawn once per source. Decoded images are cached by
their exact W+, key and noise, so going back to an earlier slider value decodes nothing.
"""
from __future__ import annotations

import hashlib
import shlex
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from alae.datasets import to_uint8
from alae.editing.directions import (
    PCA_SAMPLES,
    SCALE_SAMPLES,
    DirectionError,
    compatibility_warning,
    load_direction,
    pca_direction_set,
    sefa_direction_set,
)
from alae.files import save_image, save_npz
from alae.latents.synthesis import synthesize
from alae.model_files.loading import model_fingerprint
from alae.studio.sources import Source, SourceSpec, load_source, picture_array
from alae.studio.view import StudioDirection

SOURCE_CACHE = 16  # encoded sources kept (each a few kB of latents and one image)
IMAGE_CACHE = 64  # decoded images kept (one per W+, key and noise)
DIRECTIONS_FOLDER = "directions"  # where a run directory's own direction files are found


class LRU(OrderedDict):
    """A dict that forgets its least recently used entries beyond `size`."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or_make(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        while len(self) > self.size:
            self.popitem(last=False)
        return value


def find_directions(paths: list[str], model_path: str, fingerprint: str, latent_dim: int
                    ) -> tuple[list[StudioDirection], list[str]]:
    """Direction files named by `paths` (files, or folders whose *.npz are read in name order);
    with none given, those in the run directory's `directions/` if the model is a run. Returns
    (the directions, one-line notes: files skipped and why, directions made for another model)."""
    if not paths:
        own = Path(model_path) / DIRECTIONS_FOLDER
        paths = [str(own)] if own.is_dir() else []
    files: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            files += sorted(path.glob("*.npz"))
        elif path.is_file():
            files.append(path)
        else:
            raise DirectionError(f"--directions {given}: no such file or folder")
    directions, notes = [], []
    for file in files:
        try:
            direction = load_direction(file)
            warning = compatibility_warning(direction, fingerprint, latent_dim)
        except DirectionError as e:
            notes.append(f"skipped {e}")
            continue
        if warning:
            notes.append(warning)
        directions.append(StudioDirection(direction, str(file)))
    return directions, notes


class Studio:
    """The model (eval mode, on `device`), how a command line names it (`model_path`), the
    directions [StudioDirection], the images offered {label: path}, notes for the page (one line
    each, e.g. direction files skipped), dlib's landmarker factory (called on first alignment)
    and the caches."""

    def __init__(self, model, device: torch.device, model_path: str, directions: list[StudioDirection],
                 images: dict[str, str], notes: list[str] = (), landmarker_factory=None):
        self.model, self.device, self.model_path = model, device, model_path
        self.notes = list(notes)
        self.directions = list(directions)
        self.images = dict(images)
        self.num_layers = model.num_style_layers
        self.fingerprint = model_fingerprint(model)
        self._landmarker_factory = landmarker_factory
        self._landmarker = None
        self._sources = LRU(SOURCE_CACHE)
        self._images = LRU(IMAGE_CACHE)
        self._lock = threading.RLock()  # slider events run outside Gradio's queue, on server threads
        self.decodes = 0  # images decoded so far (the cache's misses), for the tests and the benchmark

    def landmarker(self):
        """dlib's face landmarker, built on first use (it takes a second to load)."""
        if self._landmarker is None:
            self._landmarker = self._landmarker_factory()
        return self._landmarker

    def source(self, spec: SourceSpec, on_step=None) -> Source:
        """The Source for `spec`, encoded on first use (ToolError/AlignmentError, one line, on failure)."""
        with self._lock:
            return self._sources.get_or_make(spec, lambda: load_source(
                self.model, spec, self.landmarker() if spec.align else None, self.device, on_step))

    def render(self, wplus: torch.Tensor, key: int, noise: str) -> np.ndarray:
        """The image of W+ [L, latent] with the noise of `key`: uint8 [R, R, 3] or [R, R] (cached)."""
        digest = hashlib.sha1(wplus.detach().float().cpu().numpy().tobytes()).hexdigest()

        def decode():
            self.decodes += 1
            image = to_uint8(synthesize(self.model, wplus[None], [key], noise, self.device, 1))
            return picture_array(image)

        with self._lock:
            return self._images.get_or_make((digest, key, noise), decode)

    def input_picture(self, source: Source, noise: str) -> np.ndarray:
        """The input panel: the image as encoded, or a seed's own image with the view's noise."""
        return self.render(source.wplus, source.key, noise) if source.spec.kind == "seed" else source.pixels

    def add_computed(self, method: str, num: int) -> list[StudioDirection]:
        """Compute `num` pca or sefa directions as `alae-directions METHOD MODEL --num N` does
        with its defaults (so its files hold the same vectors and scales), append and return them."""
        model_arg = shlex.quote(self.model_path)
        if method == "pca":
            found = pca_direction_set(self.model, num, PCA_SAMPLES, 0, self.fingerprint)
            prefix = "pc"
        elif method == "sefa":
            found = sefa_direction_set(self.model, None, num, SCALE_SAMPLES, 0, self.fingerprint)
            prefix = "sefa"
        else:
            raise DirectionError(f"the studio computes pca or sefa directions, not {method!r}")
        made_by = f"alae-directions {method} {model_arg} --num {num} --out {method}"
        added = [StudioDirection(d, f"{method}/{prefix}{k:02d}.npz", made_by) for k, d in enumerate(found)]
        with self._lock:
            self.directions += added
        return added

    def save_view(self, picture: np.ndarray, wplus: torch.Tensor, names: dict) -> list[str]:
        """Write the shown image as edit.png and its W+ as latents.npz (`wplus` [1, L, latent] and
        `names`, each a string array) into a fresh temporary folder; the two paths."""
        folder = Path(tempfile.mkdtemp(prefix="alae-studio-"))
        png = save_image(picture, folder / "edit.png")
        npz = save_npz(folder / "latents.npz", wplus=wplus[None].cpu().numpy(),
                       **{k: np.array(v) for k, v in names.items()})
        return [str(png), str(npz)]
