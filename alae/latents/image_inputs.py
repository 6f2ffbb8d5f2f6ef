"""The images a tool is given on its command line: files, folders (recursive), zip archives, alae LMDBs.

    refs = gather_images(["photos/", "faces.zip", "data/ffhq-lmdb"], resolution=256, holdout=32)
    batch = load_images(refs[:8], 256)                    # names, uint8 [n, 3, 256, 256], skipped, notes

Each input becomes an `ImageRef` (a unique name, and a function that decodes it); nothing is
decoded while gathering, so a folder of 70k photos is listed in seconds and read in batches.
From an alae LMDB the held-out images (its last `holdout`, the ones training never saw) are
taken unless `lmdb_split='all'`, read at the model's resolution when the database stores it.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageOps

from alae.cli import ToolError
from alae.datasets import DatasetError, LMDBDataset
from alae.datasets.fitting import fit_square, to_rgb
from alae.datasets.layout import read_metadata
from alae.datasets.sources import IMAGE_EXTENSIONS, FolderSource, ZipSource
from alae.faces.alignment import align_photo


@dataclass(frozen=True)
class ImageRef:
    """One input image: `name` (unique among the inputs; a relative path or member name) and
    `open()` → a decoded PIL image (raises OSError/ValueError/DatasetError when unreadable)."""

    name: str
    open: Callable[[], Image.Image]


def _lmdb_refs(path: Path, resolution: int, holdout: int, split: str) -> list[ImageRef]:
    """The database's images at the model's resolution if it stores it, else at its largest."""
    dataset = LMDBDataset(path, max(read_metadata(path)["resolutions"]))
    if resolution in dataset.resolutions:
        dataset.set_resolution(resolution)
    first = max(len(dataset) - holdout, 0) if split == "held-out" else 0

    def opener(index: int):
        return lambda: Image.fromarray(dataset[index].permute(1, 2, 0).numpy().squeeze())

    return [ImageRef(dataset.source_name(i), opener(i)) for i in range(first, len(dataset))]


def _source_refs(source) -> list[ImageRef]:
    listing = source.list()
    return [ImageRef(name, (lambda n: lambda: source.open_image(n))(name)) for name in listing.images]


def gather_images(specs: list[str], resolution: int, holdout: int = 32, lmdb_split: str = "held-out") -> list[ImageRef]:
    """ImageRefs for every image under `specs`, in order; ToolError for a path that does not exist
    or is no image, folder, zip or alae LMDB (DatasetError for an unusable one). Names are made unique with a ~2, ~3 ... suffix."""
    refs: list[ImageRef] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if not path.exists():
            raise ToolError(f"input not found: {spec}")
        if path.is_dir() and (path / "data.mdb").is_file():
            refs += _lmdb_refs(path, resolution, holdout, lmdb_split)
        elif path.is_dir():
            refs += _source_refs(FolderSource(path))
        elif zipfile.is_zipfile(path):
            refs += _source_refs(ZipSource(path))
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            refs.append(ImageRef(path.name, (lambda p: lambda: _open_file(p))(path)))
        else:
            raise ToolError(f"{spec} is not an image ({', '.join(IMAGE_EXTENSIONS)}), a folder, a zip archive or "
                            f"an alae LMDB")
    return _unique(refs)


def _open_file(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image


def _unique(refs: list[ImageRef]) -> list[ImageRef]:
    """Refs renamed `stem~2.ext`, `stem~3.ext`, ... where a name repeats."""
    seen: dict[str, int] = {}
    out = []
    for ref in refs:
        count = seen.get(ref.name, 0) + 1
        seen[ref.name] = count
        path = PurePosixPath(ref.name)
        out.append(ref if count == 1 else ImageRef(str(path.with_name(f"{path.stem}~{count}{path.suffix}")), ref.open))
    return out


def fit_to_model(image: Image.Image, resolution: int, channels: int = 3) -> tuple[np.ndarray, str | None]:
    """A decoded image → (uint8 [resolution, resolution, channels], a note when it was not square).

    EXIF orientation applied, converted to RGB (3 channels) or grey (1), centre-cropped to a
    square when needed and resized with Lanczos (antialiased) to the model's resolution
    (datasets.fitting, as alae-prepare does for training data)."""
    width, height = ImageOps.exif_transpose(image).size
    note = None if width == height else f"{width}x{height} is not square: centre-cropped to {min(width, height)} px"
    return fit_square(image, resolution, channels=channels), note


@dataclass
class LoadedImages:
    """A batch read for a model: names [n], pixels uint8 [n, C, R, R] (torch), origins [n] (the
    index of the ref each image came from: several faces may come from one photo), skipped
    [(name, reason)] for inputs that gave no image, notes [(name, note)] (e.g. centre crops)."""

    names: list[str]
    pixels: torch.Tensor
    origins: list[int]
    skipped: list[tuple[str, str]]
    notes: list[tuple[str, str]]


def load_images(refs: list[ImageRef], resolution: int, landmarker=None, channels: int = 3) -> LoadedImages:
    """Decode `refs` and fit them to the model (`fit_to_model`, `channels` 3 or 1), or with a
    `landmarker` cut every face out as FFHQ does (alae.faces.alignment; named NAME_00, NAME_01,
    ... left to right; made grey for a 1-channel model)."""
    names, arrays, origins, skipped, notes = [], [], [], [], []
    for index, ref in enumerate(refs):
        try:
            image = ref.open()
        except (OSError, ValueError, DatasetError, zipfile.BadZipFile, Image.DecompressionBombError) as e:
            skipped.append((ref.name, f"unreadable: {str(e).splitlines()[0] if str(e) else type(e).__name__}"))
            continue
        if landmarker is None:
            pixels, note = fit_to_model(image, resolution, channels)
            names.append(ref.name)
            arrays.append(pixels)
            origins.append(index)
            if note:
                notes.append((ref.name, note))
            continue
        faces = align_photo(to_rgb(ImageOps.exif_transpose(image)), landmarker, resolution)
        if not faces:
            skipped.append((ref.name, "no face found"))
        stem = str(PurePosixPath(ref.name).with_suffix(""))
        for k, face in enumerate(faces):
            names.append(f"{stem}_{k:02d}")
            arrays.append(fit_square(face.image, resolution, channels=channels))
            origins.append(index)
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous() if arrays else \
        torch.zeros(0, channels, resolution, resolution, dtype=torch.uint8)
    return LoadedImages(names, pixels, origins, skipped, notes)
