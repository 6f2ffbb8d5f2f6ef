"""Inception statistics of real images (mean, covariance, and for KID the features), cached on disk.

Computing them for 70k FFHQ images takes longer than the generated half of an FID, and they
never change, so rank 0 keeps them in ``cache_root()/metrics/real-KEY.npz``. The key is a
SHA-256 over everything the numbers depend on:

- the database's fingerprint: its metadata record (source, source_fingerprint over the source
  file names, count, resolutions, skipped files, build arguments) and the pixels of up to
  `FINGERPRINT_SAMPLES` evenly spaced images at the resolution, so a rebuilt database with
  other pictures under the same names gets another key;
- the resolution, the index range of the images (and the database's size);
- the feature mode and the Inception file's SHA-256;
- `CACHE_VERSION`, bumped when the way features are made changes.

Files are written atomically (alae.files) and checked on reading: the key stored inside must
match, and the arrays must have the shapes the key implies; anything else is recomputed and
overwritten. Real features (float32 [N, D]) are stored only when a KID needs them.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from alae.files import save_npz
from alae.metrics.evaluation import Evaluation
from alae.metrics.frechet import feature_moments
from alae.metrics.inception import metrics_cache_dir
from alae.metrics.sharding import broadcast_values, gather_rows

CACHE_VERSION = 1
FINGERPRINT_SAMPLES = 16


@dataclass
class RealStatistics:
    """mu [D] and sigma [D, D] float64, features float32 [count, D] (when with_features); all
    None on ranks other than 0. cached: whether they came from the cache file `path`."""

    count: int
    cached: bool
    with_features: bool
    path: Path | None
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None
    features: np.ndarray | None = None


def dataset_fingerprint(ev: Evaluation, resolution: int) -> str:
    """SHA-256 (hex) of the database's metadata and of a sample of its images at `resolution`."""
    images = ev.images(resolution)
    digest = hashlib.sha256(json.dumps(images.metadata, sort_keys=True).encode())
    count = len(images)
    for i in sorted({round(k * (count - 1) / max(FINGERPRINT_SAMPLES - 1, 1)) for k in range(FINGERPRINT_SAMPLES)}):
        digest.update(images[i].numpy().tobytes())
    return digest.hexdigest()


def cache_key(ev: Evaluation, indices: range, resolution: int) -> str:
    """The key of the statistics of database images `indices` at `resolution` (see the module docstring)."""
    parts = {"version": CACHE_VERSION, "dataset": dataset_fingerprint(ev, resolution), "resolution": resolution,
             "images": [indices.start, indices.stop], "database_size": len(ev.images(resolution)),
             "mode": ev.mode, "inception_sha256": ev.inception().digest}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _load(path: Path, key: str, count: int, need_features: bool) -> RealStatistics | None:
    """The statistics in `path` if it is a whole file for `key`, else None."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    mu, sigma, features = arrays.get("mu"), arrays.get("sigma"), arrays.get("features")
    if str(arrays.get("key")) != key or mu is None or sigma is None or int(arrays.get("count", -1)) != count:
        return None
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        return None
    if features is not None and features.shape != (count, len(mu)):
        return None
    if need_features and features is None:
        return None
    return RealStatistics(count, True, need_features, path, mu, sigma, features if need_features else None)


def real_statistics(ev: Evaluation, indices: range, resolution: int, need_features: bool, desc: str) -> RealStatistics:
    """Statistics of the Inception features of database images `indices` at `resolution`,
    from the cache or computed on all ranks (each its shard) and saved by rank 0."""
    memo_key = ("real", indices.start, indices.stop, resolution)
    held = ev.memo.get(memo_key)
    if held is not None and (held.with_features or not need_features):
        return held
    path, found = None, None
    if ev.ctx.is_main:
        key = cache_key(ev, indices, resolution)
        path = metrics_cache_dir() / f"real-{key[:24]}.npz"
        found = _load(path, key, len(indices), need_features)
    if broadcast_values([float(found is not None)], ev.ctx)[0]:
        stats = found if ev.ctx.is_main else RealStatistics(len(indices), True, need_features, None)
    else:
        stats = _compute(ev, indices, resolution, need_features, desc)
        if ev.ctx.is_main:
            stats.path = path
            arrays = {"key": np.array(key), "count": np.array(stats.count), "mu": stats.mu, "sigma": stats.sigma}
            save_npz(path, **arrays, **({"features": stats.features} if need_features else {}))
    ev.memo[memo_key] = stats
    return stats


def _compute(ev: Evaluation, indices: range, resolution: int, need_features: bool, desc: str) -> RealStatistics:
    inception = ev.inception()
    parts = []
    bar = ev.progress(len(ev.my_shard(indices)), desc)
    for _, images in ev.image_batches(indices, resolution):
        parts.append(inception(images))
        bar.update(len(images))
    bar.close()
    features = gather_rows(torch.cat(parts), len(indices), ev.ctx)
    if features is None:
        return RealStatistics(len(indices), False, need_features, None)
    features = features.numpy()
    mu, sigma = feature_moments(features)
    return RealStatistics(len(indices), False, need_features, None, mu, sigma, features if need_features else None)
