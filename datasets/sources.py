"""Where images come from: a folder tree, a zip archive, the embedded demo faces, or MNIST digits (mnist.py).

Each source lists its images as names in the order a database stores them in (sorted, for
these three) and opens one image by name (source_protocol.py has the interface). Sources are
picklable, so builder worker processes get their own copy; a zip archive is opened lazily once
per process.
"""
import functools
import io
import os
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DatasetError
from .mnist import (
    MNIST_SOURCE,
    embedded_digits,
    idx_digits,
    is_idx_folder,
    is_idx_images_file,
)
from .source_protocol import ImageSource, SourceListing

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
LFW_SOURCE = "lfw"
LFW_FACE_COUNT = 100  # skimage.data.lfw_subset(): the first 100 of its 200 images are faces
LFW_DEFAULT_MAX_RESOLUTION = 32


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


class FolderSource(ImageSource):
    """Images under a folder, recursively; names are POSIX paths relative to the folder."""

    def __init__(self, root: Path):
        self.root = root
        self.description = str(root.resolve())

    def list(self) -> SourceListing:
        files = sorted(path.relative_to(self.root).as_posix() for path in self.root.rglob("*") if path.is_file())
        return SourceListing([f for f in files if _is_image_name(f)], [f for f in files if not _is_image_name(f)])

    def open_image(self, name: str) -> Image.Image:
        """The decoded image (pixels loaded; raises OSError or PIL errors on unreadable files)."""
        with Image.open(self.root / name) as image:
            image.load()
            return image


class ZipSource(ImageSource):
    """Images inside a zip archive (e.g. FFHQ's images1024x1024.zip); names are member paths."""

    def __init__(self, path: Path):
        self.path = path
        self.description = str(path.resolve())
        self._archive = None
        self._archive_pid = None

    def __getstate__(self):
        return {**self.__dict__, "_archive": None, "_archive_pid": None}

    def _zip(self) -> zipfile.ZipFile:
        """This process's handle on the archive. A handle inherited through fork shares its file
        offset with the parent and the other workers, so concurrent reads would corrupt each
        other: each process opens its own."""
        if self._archive is None or self._archive_pid != os.getpid():
            self._archive = zipfile.ZipFile(self.path)
            self._archive_pid = os.getpid()
        return self._archive

    def list(self) -> SourceListing:
        members = sorted(info.filename for info in self._zip().infolist() if not info.is_dir())
        usable = {m for m in members if _is_image_name(m) and not m.startswith("__MACOSX/")}
        return SourceListing([m for m in members if m in usable], [m for m in members if m not in usable])

    def open_image(self, name: str) -> Image.Image:
        """The decoded image (pixels loaded; raises OSError, zip or PIL errors on unreadable members)."""
        with Image.open(io.BytesIO(self._zip().read(name))) as image:
            image.load()
            return image


class LfwFacesSource(ImageSource):
    """The 100 face images embedded in scikit-image (`skimage.data.lfw_subset()`): 25x25 grayscale, stored as RGB."""

    description = LFW_SOURCE
    default_max_resolution = LFW_DEFAULT_MAX_RESOLUTION

    def list(self) -> SourceListing:
        return SourceListing([f"lfw_subset/face_{i:03d}" for i in range(LFW_FACE_COUNT)], [])

    def open_image(self, name: str) -> Image.Image:
        """Face `name` as an 8-bit grayscale 25x25 image (float [0, 1] scaled by 255, rounded)."""
        index = int(name.rsplit("_", 1)[1])
        return Image.fromarray(np.rint(_lfw_faces()[index] * 255.0).astype(np.uint8))


@functools.cache
def _lfw_faces() -> np.ndarray:
    """float64 [100, 25, 25] in [0, 1], loaded once per process."""
    from skimage.data import lfw_subset

    return lfw_subset()[:LFW_FACE_COUNT]


def open_source(spec: str) -> ImageSource:
    """A source from a command-line SOURCE: a folder, a zip archive, MNIST IDX files, or the word 'lfw' or 'mnist'.

    A folder holding MNIST IDX files (mnist.py) is read as digits, otherwise as a tree of
    images; a file is a zip archive or an MNIST images file. Raises DatasetError for a missing
    path, a file that is none of these, a bad archive or bad IDX files.
    """
    if spec == LFW_SOURCE:
        return LfwFacesSource()
    if spec == MNIST_SOURCE:
        return embedded_digits()
    path = Path(spec)
    if not path.exists():
        raise DatasetError(f"source not found: {spec}")
    if path.is_dir():
        return idx_digits(path) if is_idx_folder(path) else FolderSource(path)
    if is_idx_images_file(path):
        return idx_digits(path)
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"source {spec} is not a folder, a zip archive, an MNIST images file, "
                           f"'{LFW_SOURCE}' or '{MNIST_SOURCE}'")
    return ZipSource(path)
