"""alae checkpoints: the format, the atomic writes, and the one reader of every model file.

Contents: `format_version`, `config` (resolved, as a dict), `model` and `ema` state dicts,
`optimizers` (name → state dict) and `progress` (images seen, step, data position, the lod the
optimizer state belongs to). Nothing in it depends on the rank or world size, so a run resumes
on a different number of processes. No RNG state is saved: every random draw of training is
seeded by what it is for (`alae.randomness`, `alae.training.data`). Checkpoints written before
that change carry an `rng` entry, which loads and is ignored.

A networks-only checkpoint (`alae-convert`'s output) has `format_version`, `config`, `ema`,
`model` (if the source had training networks besides the EMA ones) and `source` (where the
weights came from), and no optimizer state or schedule position: tools load it, and
`alae-train --init` starts new runs from it.

A save writes `NAME.tmp` next to the target, fsyncs it and renames it over the target, so a
crash mid-write leaves the previous checkpoint untouched.

Reading (`read_model_file`, for alae checkpoints and the original ALAE's files alike) never
runs code from the file: tensors-only unpickling first; for files that need more (the
original's may pickle optimizer and tracker objects) an unpickler with a fixed allow-list of
torch's tensor rebuilders, its storage classes and OrderedDict, which turns every other global
the file names into an inert placeholder without looking it up. A run directory
stands for its `checkpoints/latest.pt` (`checkpoint_path`).
"""
from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import torch

from alae.errors import UserError
from alae.files import save_torch

FORMAT_VERSION = 1
LATEST = "latest.pt"


class CheckpointError(UserError, RuntimeError):
    """A checkpoint or model file is missing, unreadable or from an incompatible format."""


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


def checkpoint_path(path: str | Path) -> Path:
    """A run directory → its `checkpoints/latest.pt` (or a `latest.pt` directly in it); a file →
    itself. CheckpointError naming the path when there is neither."""
    path = Path(path).expanduser()
    if path.is_dir():
        for candidate in (path / "checkpoints" / LATEST, path / LATEST):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{path} is a folder without checkpoints/{LATEST}: not a run directory")
    if not path.is_file():
        raise CheckpointError(f"model not found: {path}")
    return path


def find_resume_path(resume: str, run_dir: Path) -> Path | None:
    """`auto` → the run's `checkpoints/latest.pt` if it exists (else None: start fresh); otherwise
    the checkpoint a path names (`checkpoint_path`)."""
    if resume == "auto":
        latest = Path(run_dir) / "checkpoints" / LATEST
        return latest if latest.is_file() else None
    if not Path(resume).expanduser().exists():
        raise CheckpointError(f"--resume: checkpoint not found: {resume}")
    try:
        return checkpoint_path(resume)
    except CheckpointError as e:
        raise CheckpointError(f"--resume: {e}") from None


class _Inert:
    """Stands in for any pickled object that is not a tensor or a plain container (e.g. the
    original code's loss tracker in a checkpoint's `auxiliary` entry): accepts any arguments
    and state, and does nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


# The only globals the fallback unpickler resolves: what torch.save writes for tensors,
# parameters and state dicts (checked with pickletools on torch 2.14's zip and legacy formats).
# Every other global a file names, whatever it is, becomes _Inert; none is looked up or called.
TENSOR_STORAGES = ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")
TENSOR_GLOBALS = frozenset(
    {("torch._utils", name) for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter",
                                         "_rebuild_parameter_with_state")}
    | {("torch", f"{kind}Storage") for kind in TENSOR_STORAGES}
    | {("collections", "OrderedDict")}
)


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in TENSOR_GLOBALS:
            return super().find_class(module, name)
        return _Inert


def _data_only_load(file, **kwargs):
    """pickle.load through _DataOnlyUnpickler (torch reads a legacy file's header with `load`)."""
    return _DataOnlyUnpickler(file, **kwargs).load()


_DATA_ONLY_PICKLE = SimpleNamespace(Unpickler=_DataOnlyUnpickler, load=_data_only_load,
                                    __name__="alae_data_only_pickle")


def read_model_file(path: Path):
    """The object in a torch file on the CPU, without running code from it (module docstring);
    CheckpointError naming the file when it is truncated or not a torch file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    except Exception as e:  # truncated, not a zip or pickle, ...
        raise CheckpointError(f"cannot read checkpoint {path}: {str(e).splitlines()[0]}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_DATA_ONLY_PICKLE)
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {str(e).splitlines()[0]}") from None


def is_alae_checkpoint(obj) -> bool:
    return isinstance(obj, dict) and "format_version" in obj


def check_format(payload: dict, path: Path) -> dict:
    """`payload`, if it is an alae checkpoint of the format this alae reads; CheckpointError otherwise."""
    if not is_alae_checkpoint(payload):
        raise CheckpointError(f"{path} is not an alae checkpoint")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {payload['format_version']}, this alae reads format {FORMAT_VERSION}"
        )
    return payload


def load_checkpoint(path: Path) -> dict:
    """The payload of the alae checkpoint at `path` (a file, or a run directory)."""
    path = checkpoint_path(path)
    return check_format(read_model_file(path), path)
