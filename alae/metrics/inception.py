"""The Inception feature network of FID and KID: finding the weights, and features in clean-fid's two modes.

The network is NVlabs' TorchScript ``inception-2015-12-05.pt`` (the file StyleGAN2-ADA and
clean-fid use), looked up by `alae.metrics.weight_files.INCEPTION` (``--inception``,
``$ALAE_INCEPTION``, the cache root, clean-fid's folder). When none of those holds it and no
path was given, clean-fid's download helper fetches it into the cache root; on a machine
without internet that fails and the error is the one line naming the file, its URL and where
to put it.

Features of uint8 images [N, C, H, W] (C = 1 is repeated to 3, as StyleGAN2-ADA does), as
clean-fid's `build_feature_extractor` and `build_resizer` make them:

- ``clean``: each channel resized to 299×299 by PIL bicubic in float32 (clean-fid's
  ``make_resizer("PIL", False, "bicubic", (299, 299))``, values clipped to [0, 255]), then
  ``(x − 128) / 128`` and the network's ``layers`` (clean-fid's InceptionV3W, resize_inside=False).
- ``legacy_tensorflow``: the float [0, 255] images go to ``forward(x, return_features=True)``,
  which resizes inside the network as TensorFlow's Inception did: the numbers of StyleGAN,
  StyleGAN2-ADA and the ALAE paper.

The result is float32 [N, D] on the network's device (D = 2048, the pool3 features, for the
real file).
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from cleanfid.downloads_helper import check_download_inception
from cleanfid.resize import build_resizer

from alae.files import save_json
from alae.metrics.errors import MetricError
from alae.metrics.weight_files import INCEPTION, cache_root

MODES = ("clean", "legacy_tensorflow")  # clean-fid's modes for the TorchScript Inception
INCEPTION_SIZE = 299  # clean-fid / Inception v3 input side
DOWNLOAD_TIMEOUT_S = 60
DIGESTS_FILE = "file-digests.json"  # under cache_root()/metrics: sha256 of weight files by path, size, mtime


def metrics_cache_dir() -> Path:
    """cache_root()/metrics: the real-image statistics and the weight-file digests."""
    return cache_root() / "metrics"


def find_inception(given: str | os.PathLike | None, download: bool) -> Path:
    """The Inception file: `given`, $ALAE_INCEPTION or a default location; failing those and
    with `download` (and no `given`), clean-fid's helper fetches it into the cache root.
    MetricError with `INCEPTION.missing_message` when it cannot be had."""
    found = INCEPTION.find(given)
    if found is not None:
        return found
    if given or not download:
        raise MetricError(INCEPTION.missing_message(given))
    target = cache_root() / INCEPTION.file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        with tempfile.TemporaryDirectory(prefix=".inception-download-", dir=target.parent) as folder:
            os.replace(check_download_inception(fpath=folder), target)  # a broken download never lands at target
    except Exception:  # offline, DNS failure, HTTP error, disk full: the user places the file by hand
        raise MetricError(INCEPTION.missing_message()) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return target


def file_digest(path: Path, remember: bool = True) -> str:
    """SHA-256 (hex) of a file's bytes, remembered in the cache by (absolute path, size, mtime)
    so a 95 MB weight file is hashed once; `remember=False` reads but never writes that record."""
    path = Path(path).resolve()
    stat = path.stat()
    record = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    table_path = metrics_cache_dir() / DIGESTS_FILE
    try:
        table = json.loads(table_path.read_text())
    except (OSError, ValueError):
        table = {}
    if not isinstance(table, dict):
        table = {}
    if isinstance(table.get(record), str):
        return table[record]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    table[record] = digest.hexdigest()
    if remember:
        save_json(table, table_path)
    return table[record]


def _load_torchscript(path: Path, device: torch.device) -> torch.jit.ScriptModule:
    """The TorchScript module at `path` after checking it has Inception's interface; MetricError otherwise."""
    expected = f"NVlabs' {INCEPTION.file_name} ({INCEPTION.url})"
    try:
        with warnings.catch_warnings():  # the file exists only as TorchScript, whatever torch thinks of torch.jit
            warnings.filterwarnings("ignore", message="`torch.jit.load` is deprecated", category=FutureWarning)
            module = torch.jit.load(str(path), map_location=device)
    except Exception as e:
        raise MetricError(f"{INCEPTION.what}: cannot load {path} as TorchScript ({str(e).splitlines()[0]}); "
                          f"expected {expected}") from None
    arguments = {a.name for a in module.forward.schema.arguments}
    if "return_features" not in arguments or not hasattr(module, "layers"):
        raise MetricError(f"{INCEPTION.what}: {path} is a TorchScript module without forward(img, "
                          f"return_features=...) and .layers; expected {expected}")
    return module.eval()


class InceptionFeatures:
    """uint8 images [N, C, H, W] (any device) → features float32 [N, D] on `device`, in `mode`.

    `digest` is the file's SHA-256 (part of every cache key); `remember_digest` lets this
    process write it to the digest record (one rank only, so writers never race).
    """

    def __init__(self, path: Path, mode: str, device: torch.device, remember_digest: bool = True,
                 threads: int | None = None):
        if mode not in MODES:
            raise MetricError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.path, self.mode, self.device = Path(path), mode, torch.device(device)
        self.network = _load_torchscript(self.path, self.device)
        self.digest = file_digest(self.path, remember_digest)
        self.resize = build_resizer("clean")  # clean-fid's PIL bicubic float resize to 299×299
        self.threads = threads or min(8, os.cpu_count() or 1)

    def _clean_inputs(self, images: torch.Tensor) -> torch.Tensor:
        """Each image resized by clean-fid's clean resizer (PIL releases the GIL: one thread per image)."""
        pixels = images.permute(0, 2, 3, 1).cpu().numpy()
        with ThreadPoolExecutor(self.threads) as pool:
            resized = list(pool.map(self.resize, pixels))
        return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).to(self.device)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected uint8 images [N, 1 or 3, H, W], got {images.dtype} {tuple(images.shape)}")
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        if self.mode == "clean":
            features = self.network.layers((self._clean_inputs(images) - 128) / 128)
        else:
            features = self.network(images.to(self.device, torch.float32), return_features=True)
        return features.reshape(len(images), -1).float()

    def describe(self) -> dict:
        """What a result records about the network: file name, path and digest."""
        return {"file": self.path.name, "path": str(self.path), "sha256": self.digest}
