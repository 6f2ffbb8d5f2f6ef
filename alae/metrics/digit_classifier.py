"""A small digit classifier trained once on a labelled database: the feature network of fd_digits{N}k.

    net, cached = digit_classifier(ev)          # on every rank; net on ev.device, eval mode
    features = net.features(images)             # uint8 [N, C, R, R] → float32 [N, FEATURES]

The network (ours): conv 3×3 C→16, ReLU, max-pool 2; conv 3×3 16→32, ReLU, max-pool 2;
average-pooled to 4×4; linear 512→`FEATURES`, ReLU (the features); linear → classes. Inputs are
the database's pixels at the resolution of `lod`, in [−1, 1]. It is trained on the CPU, whatever
the device, so its weights depend on the data alone: `EPOCHS` epochs of Adam (lr `LR`) over the
training images (splits.py; all images without a holdout) in shuffled batches of `BATCH`, the
initial weights and the order drawn from seeds derived from "digit-classifier". A few seconds for
the 4,500 embedded training digits.

Rank 0 keeps the weights in ``cache_root()/metrics/digits-KEY.npz`` (beside the Inception
statistics), KEY a SHA-256 over the database's fingerprint (`dataset_stats.dataset_fingerprint`),
the resolution, the training image range, the training constants below and `CACHE_VERSION`
(bumped when the network changes); the file is written atomically and used only when the key
stored inside matches and the weights load. The other ranks read it after rank 0 (or train the
same network themselves when it cannot be read).
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

import alae.randomness as randomness
from alae.datasets import to_model_range
from alae.files import save_npz
from alae.metrics import splits
from alae.metrics.dataset_stats import dataset_fingerprint
from alae.metrics.evaluation import Evaluation
from alae.metrics.inception import metrics_cache_dir
from alae.metrics.sharding import broadcast_values

CACHE_VERSION = 1
FEATURES = 64  # ours: the width of the feature layer
EPOCHS = 5  # ours: 94% accuracy on the 500 held-out embedded digits, in about 4 s on 2 CPU cores
BATCH = 64  # ours
LR = 3e-3  # ours (90% at Adam's usual 1e-3 for 3 epochs)


class DigitClassifier(nn.Module):
    """The network of the module docstring: `features` (uint8 images → [N, FEATURES]) and `forward` (→ logits)."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(32 * 4 * 4, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images [N, C, R, R] (R ≥ 4) → float32 features [N, FEATURES]."""
        return self.body(to_model_range(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images [N, C, R, R] → class logits [N, classes]."""
        return self.head(self.features(images))


def training_range(ev: Evaluation) -> range:
    """The images the classifier learns from: the split's training images, or all without a holdout."""
    total = len(ev.images(ev.full_resolution))
    return splits.split(ev)[0] if splits.split_problem(ev) is None else range(total)


def train_classifier(images: torch.Tensor, labels: torch.Tensor, classes: int) -> DigitClassifier:
    """A DigitClassifier trained on the CPU on uint8 images [N, C, R, R] with int64 labels [N] (module docstring)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(randomness.derive_seed("digit-classifier", "init"))
        net = DigitClassifier(images.shape[1], classes)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    order = randomness.generator("digit-classifier", "order")
    with torch.enable_grad():  # the metrics run under no_grad
        for _ in range(EPOCHS):
            for rows in torch.randperm(len(images), generator=order).split(BATCH):
                optimizer.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(net(images[rows]), labels[rows]).backward()
                optimizer.step()
    return net.eval().requires_grad_(False)


def _cache_key(ev: Evaluation, indices: range) -> str:
    parts = {"version": CACHE_VERSION, "dataset": dataset_fingerprint(ev, ev.resolution), "resolution": ev.resolution,
             "images": [indices.start, indices.stop], "training": [FEATURES, EPOCHS, BATCH, LR]}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _load(path: Path, key: str, channels: int, classes: int) -> DigitClassifier | None:
    """The classifier stored in `path` for `key`, or None when the file is missing, torn or for another key."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        if str(arrays.pop("key", "")) != key:
            return None
        net = DigitClassifier(channels, classes)
        net.load_state_dict({name: torch.from_numpy(a) for name, a in arrays.items()})
    except (OSError, ValueError, EOFError, KeyError, RuntimeError, zipfile.BadZipFile):
        return None
    return net.eval().requires_grad_(False)


def _load_or_train(ev: Evaluation, path: Path, key: str, indices: range, save: bool) -> tuple[DigitClassifier, bool]:
    database = ev.images(ev.resolution)
    net = _load(path, key, database.channels, database.classes)
    if net is not None:
        return net, True
    images = torch.stack([database[i] for i in indices])
    net = train_classifier(images, torch.from_numpy(splits.labels(ev, indices)), database.classes)
    if save:
        save_npz(path, key=np.array(key), **{name: t.numpy() for name, t in net.state_dict().items()})
    return net, False


def digit_classifier(ev: Evaluation) -> tuple[DigitClassifier, bool]:
    """(the classifier of `ev`'s database and resolution on ev.device, whether it came from the
    cache); call on every rank."""
    if "digit_classifier" not in ev.memo:
        indices = training_range(ev)
        key = _cache_key(ev, indices)
        path = metrics_cache_dir() / f"digits-{key[:24]}.npz"
        found = _load_or_train(ev, path, key, indices, save=True) if ev.ctx.is_main else None
        broadcast_values([0.0], ev.ctx)  # the other ranks read the file once rank 0 has written it
        net, cached = found or _load_or_train(ev, path, key, indices, save=False)
        ev.memo["digit_classifier"] = (net.to(ev.device), cached)
    return ev.memo["digit_classifier"]
