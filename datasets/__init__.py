"""alae.datasets: build multi-resolution LMDB image databases and load them for training.

Command line: `alae-prepare SOURCE OUT ...` (prepare.py). In Python:

    from alae.datasets import LMDBDataset, to_model_range
    dataset = LMDBDataset(path, resolution=64, mirror=True)   # dataset[i]: uint8 [3, 64, 64]
    x = to_model_range(batch.to(device))                      # float in [-1, 1]

    digits = LMDBDataset(ensure_mnist_database(), 28)         # digits[i]: uint8 [1, 28, 28]
    digits.label(i)                                           # its class, 0..9
"""
from .builder import BuildSummary, build_database
from .demo_cache import default_cache_dir, ensure_lfw_database, ensure_mnist_database
from .errors import DatasetError
from .lmdb_dataset import LMDBDataset
from .mnist import DigitSource, embedded_digits, idx_digits, read_idx
from .value_range import to_model_range, to_uint8
from .verify import VerifyReport, verify_database

__all__ = [
    "BuildSummary",
    "DatasetError",
    "DigitSource",
    "LMDBDataset",
    "VerifyReport",
    "build_database",
    "default_cache_dir",
    "embedded_digits",
    "ensure_lfw_database",
    "ensure_mnist_database",
    "idx_digits",
    "read_idx",
    "to_model_range",
    "to_uint8",
    "verify_database",
]
