"""The training loader: one resolution of an alae LMDB database as a torch Dataset of uint8 images."""
import operator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .codec import decode_record
from .errors import DatasetError
from .layout import (
    decode_label,
    image_key,
    label_key,
    name_key,
    native_border,
    read_metadata,
)
from .readers import reader_key, shared_reader


class LMDBDataset(Dataset):
    """Images of one resolution: dataset[i] is a uint8 tensor [C, R, R] (values 0..255; C = `channels`, 3 or 1).

    `resolutions` are the stored levels, plus the native resolution of a database that has one
    (MNIST: 28, served as the exact central crop of the 32 px level). `classes` is the number
    of classes of a labelled database (else None; `has_labels`), and `label(i)` image i's class.

    Convert with `alae.datasets.to_model_range` on the training device. With `mirror`, each
    access flips the image horizontally with probability 1/2, drawn from torch's global RNG
    (seeded per DataLoader worker by torch).

    The object holds no LMDB handle: each access goes through this process's shared reader
    (readers.py: opened lazily, read-only, lock=False, readahead=False, re-opened after a fork),
    so it is safe to hand to DataLoader workers under fork and spawn, and many datasets over
    one database are cheap. `set_resolution` switches level without reopening anything.

    Raises DatasetError for a missing path, a directory that is not an alae database, an
    incomplete build, or a resolution the database does not serve.
    """

    def __init__(self, path, resolution: int, mirror: bool = False):
        self.path = Path(path)
        self.metadata = meta = read_metadata(self.path)
        self._stored = sorted(meta["resolutions"])
        self.native_resolution: int | None = meta.get("native_resolution")
        native = [] if self.native_resolution is None else [self.native_resolution]
        self.resolutions: list[int] = sorted(self._stored + native)
        self.channels: int = meta["channels"]
        self.classes: int | None = meta.get("labels", {}).get("classes")
        self._count: int = meta["count"]
        self._encodings = {int(r): e for r, e in meta["record_encodings"].items()}
        self.mirror = mirror
        self._reader_key = reader_key(self.path)
        self.set_resolution(resolution)

    def set_resolution(self, resolution: int) -> None:
        """Serve images at `resolution` (pixels) from now on; DatasetError if it is not in `resolutions`.

        Affects this object only: DataLoader workers that already hold a copy (persistent_workers)
        keep theirs, so call it before creating the next DataLoader iterator.
        """
        if resolution not in self.resolutions:
            stored = ", ".join(map(str, self.resolutions))
            raise DatasetError(f"{self.path} does not store resolution {resolution}; it stores {stored}")
        self.resolution = resolution
        if resolution in self._stored:
            self._level, self._border = resolution, 0
        else:  # the native resolution: the central crop of the max level
            self._level, self._border = self._stored[-1], native_border(self.metadata)

    @property
    def has_labels(self) -> bool:
        """True when the database stores one class label per image."""
        return self.classes is not None

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index) -> torch.Tensor:
        index = self._checked_index(index)
        with shared_reader(self._reader_key).begin(buffers=True) as txn:
            record = txn.get(image_key(self._level, index))
            if record is None:
                raise DatasetError(f"{self.path}: image {index} at {self._level} px is missing; the database "
                                   f"is damaged (check it with alae-prepare --verify {self.path})")
            pixels = decode_record(record, self._encodings[self._level], self._level, self.channels)
        if self._border:
            pixels = np.ascontiguousarray(pixels[:, self._border:-self._border, self._border:-self._border])
        if self.mirror and torch.rand(()) < 0.5:
            pixels = np.ascontiguousarray(pixels[:, :, ::-1])  # numpy: torch.flip goes multi-threaded and is ~1000x slower here
        return torch.from_numpy(pixels)

    def source_name(self, index: int) -> str:
        """The file (relative path or zip member, as listed by alae-prepare) image `index` came from."""
        index = self._checked_index(index)
        with shared_reader(self._reader_key).begin() as txn:
            name = txn.get(name_key(index))
        if name is None:
            raise DatasetError(f"{self.path}: the source name of image {index} is missing; the database is damaged")
        return bytes(name).decode()

    def label(self, index: int) -> int:
        """The class label of image `index`, in [0, classes).

        DatasetError when the database has no labels, or this label record is missing or malformed.
        """
        if self.classes is None:
            raise DatasetError(f"{self.path} has no class labels (its source had none; MNIST databases have them)")
        index = self._checked_index(index)
        with shared_reader(self._reader_key).begin() as txn:
            record = txn.get(label_key(index))
        damaged = f"the database is damaged (check it with alae-prepare --verify {self.path})"
        if record is None:
            raise DatasetError(f"{self.path}: the label of image {index} is missing; {damaged}")
        try:
            return decode_label(record, self.classes)
        except ValueError as error:
            raise DatasetError(f"{self.path}: image {index}: {error}; {damaged}") from None

    def _checked_index(self, index) -> int:
        index = operator.index(index)
        if not -self._count <= index < self._count:
            raise IndexError(f"index {index} out of range for a dataset of {self._count} images")
        return index % self._count

    def __repr__(self) -> str:
        return f"LMDBDataset({str(self.path)!r}, resolution={self.resolution}, mirror={self.mirror}, images={self._count})"
