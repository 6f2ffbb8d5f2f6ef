"""Checkpoints: one `.pt` file per save, written atomically, enough to continue a run exactly.

Contents: `format_version`, `config` (resolved, as a dict), `model` and `ema` state dicts,
`optimizers` (name → state dict) and `progress` (images seen, step, data position, the lod the
optimizer state belongs to). Nothing in it depends on the rank or world size, so a run resumes
on a different number of processes. No RNG state is saved: every random draw of training is
seeded by what it is for (`alae.randomness`, `alae.data`). Checkpoints written before that
change carry an `rng` entry, which loads and is ignored.

A networks-only checkpoint (`alae-convert`'s output) has `format_version`, `config`, `ema`,
`model` (if the source had training networks besides the EMA ones) and `source` (where the
weights came from), and no optimizer state or schedule position: tools load it, and `alae-train --init` starts new runs from it.

A save writes `NAME.tmp` next to the target, fsyncs it and renames it over the target, so a
crash mid-write leaves the previous checkpoint untouched.
"""
from __future__ import annotations

from pathlib import Path

import torch

from alae.files import save_torch

FORMAT_VERSION = 1
LATEST = "latest.pt"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or from an incompatible format."""


def save_checkpoint(checkpoint_dir: Path, payload: dict, kimg: float, keep: int) -> Path:
    """Write `snapshot-KIMG.pt` and `latest.pt` (both atomic); keep the newest `keep` snapshots."""
    checkpoint_dir = Path(checkpoint_dir)
    payload = dict(payload, format_version=FORMAT_VERSION)
    snapshot = checkpoint_dir / f"snapshot-{kimg:08.1f}kimg.pt"
    save_torch(payload, snapshot)
    save_torch(payload, checkpoint_dir / LATEST)
    for old in sorted(checkpoint_dir.glob("snapshot-*.pt"))[:-keep]:
        old.unlink()
    return snapshot


def save_networks_checkpoint(path: Path, config: dict, model: dict | None, ema: dict, source: dict) -> Path:
    """Write a networks-only checkpoint (see the module docstring), atomically; `model` (the
    training networks) is left out when the source has only one set."""
    payload = {"format_version": FORMAT_VERSION, "config": config, "ema": ema, "source": source}
    if model is not None:
        payload["model"] = model
    return save_torch(payload, path)


def find_resume_path(resume: str, run_dir: Path) -> Path | None:
    """`auto` → the run's `checkpoints/latest.pt` if it exists (else None: start fresh); otherwise a path."""
    if resume == "auto":
        latest = Path(run_dir) / "checkpoints" / LATEST
        return latest if latest.is_file() else None
    path = Path(resume)
    if path.is_dir():
        path = path / "checkpoints" / LATEST if (path / "checkpoints").is_dir() else path / LATEST
    if not path.is_file():
        raise CheckpointError(f"--resume: checkpoint not found: {path}")
    return path


def load_checkpoint(path: Path) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file: say which file, not a pickle traceback
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path} is not an alae checkpoint")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {payload['format_version']}, this alae reads format {FORMAT_VERSION}"
        )
    return payload
