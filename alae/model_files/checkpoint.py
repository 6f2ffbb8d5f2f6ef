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

A save writes the payload once, as `snapshot-KIMG.pt` (`NAME.tmp` beside it, fsynced, renamed
over the target), then swaps `latest.pt` in as a hard link to that snapshot (a link made under
a temporary name and renamed over the old one; a copy where the file system has no hard links),
so `latest.pt` stays an ordinary file that tools read, and a crash at any moment leaves the
previous checkpoint untouched. Runs written before this kept two copies; they load the same.
A resume (`find_resume_path`) takes the newest complete checkpoint of the run, `latest.pt` or
a snapshot, and notes the ones it passed over (unreadable, or a `latest.pt` older than a snapshot
because the run stopped between the two renames).

Everything alae writes is tensors, containers and primitives, so `torch.load(weights_only=True)`
reads it. Reading (`read_model_file`, for alae checkpoints, safetensors networks and the original
ALAE's files alike) never runs code from the file: tensors-only unpickling first; for files that
need more (the original's may pickle objects of its own classes beside its state dicts)
`safe_pickle`'s fixed allow-list, which turns every other global the file names into an inert
placeholder without looking it up. Placeholders are refused with a one-line error naming the
global, except outside the networks of an original file, where they are dropped. A run
directory stands for its `checkpoints/latest.pt` (`checkpoint_path`).
"""
from __future__ import annotations

import os
import pickle
import shutil
import warnings
from pathlib import Path
from typing import Callable

import torch

from alae.errors import UserError
from alae.files import TEMPORARY_SUFFIX, atomic_write, save_torch
from alae.model_files import safe_pickle, safetensors_file

FORMAT_VERSION = 1
LATEST = "latest.pt"


class CheckpointError(UserError, RuntimeError):
    """A checkpoint or model file is missing, unreadable or from an incompatible format."""


def save_checkpoint(checkpoint_dir: Path, payload: dict, kimg: float, keep: int) -> Path:
    """Write `snapshot-KIMG.pt` (atomic, one write) and make `latest.pt` that file (module
    docstring); keep the newest `keep` snapshots. Returns the snapshot's path."""
    checkpoint_dir = Path(checkpoint_dir)
    payload = dict(payload, format_version=FORMAT_VERSION)
    snapshot = save_torch(payload, checkpoint_dir / f"snapshot-{kimg:08.1f}kimg.pt")
    link = checkpoint_dir / (LATEST + TEMPORARY_SUFFIX)
    link.unlink(missing_ok=True)
    try:
        os.link(snapshot, link)
    except OSError:  # no hard links on this file system (FAT, some network shares): a copy
        with open(snapshot, "rb") as source:
            atomic_write(link, lambda f: shutil.copyfileobj(source, f, 1 << 24), size_hint=snapshot.stat().st_size)
    os.replace(link, checkpoint_dir / LATEST)
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


def find_resume_path(resume: str, run_dir: Path, notes: list[str] | None = None) -> Path | None:
    """`auto` → the newest complete checkpoint in the run's `checkpoints/` (None when it has none:
    start fresh); a run directory → the same in it; a file → itself. What was passed over is
    appended to `notes` (one line each). CheckpointError when nothing there is readable."""
    if resume == "auto":
        return newest_checkpoint(Path(run_dir) / "checkpoints", notes)
    path = Path(resume).expanduser()
    if not path.exists():
        raise CheckpointError(f"--resume: checkpoint not found: {resume}")
    if path.is_dir():
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        found = newest_checkpoint(folder, notes)
        if found is None:
            raise CheckpointError(f"--resume: {path} is a folder without checkpoints/{LATEST}: not a run directory")
        return found
    return path


def newest_checkpoint(checkpoint_dir: Path, notes: list[str] | None = None) -> Path | None:
    """The checkpoint of `checkpoint_dir` (latest.pt or a snapshot) that reads and is furthest
    along (images seen; latest.pt on a tie); None when there are none. Temporaries are never
    candidates. CheckpointError when there are checkpoints and none of them reads."""
    notes = [] if notes is None else notes
    latest = checkpoint_dir / LATEST
    candidates = sorted(checkpoint_dir.glob("snapshot-*.pt"), reverse=True)
    if latest.is_file():
        candidates.insert(0, latest)
    readable: list[tuple[int, Path]] = []
    failures: list[CheckpointError] = []
    for path in candidates:
        try:
            readable.append((images_seen_in(path), path))
        except CheckpointError as e:  # torn, truncated, refused or not a checkpoint: passed over, said so
            failures.append(e)
            notes.append(f"passed over: {e}")
    if not readable:
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise CheckpointError(f"no readable checkpoint in {checkpoint_dir}: " + "; ".join(map(str, failures)))
        return None
    images, chosen = max(readable, key=lambda c: (c[0], c[1] == latest))
    if chosen != latest:
        behind = next((f"{LATEST} is at {i / 1000:g} kimg" for i, p in readable if p == latest), f"{LATEST} is missing")
        notes.append(f"{behind}: resuming from the newest complete checkpoint, {chosen.name} ({images / 1000:g} kimg)")
    return chosen


def images_seen_in(path: Path) -> int:
    """progress.images_seen of the alae checkpoint at `path` (-1 if it has none): its pickle read
    with the tensors memory-mapped, not loaded; a file that cannot be read so (an older format)
    through the one reader. CheckpointError (one line) when it is not a readable alae checkpoint."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # the one reader reads it, or says in one line why not
        payload = load_checkpoint(path)
    return int(check_format(payload, path).get("progress", {}).get("images_seen", -1))


def read_model_file(path: Path, placeholders_allowed: Callable[[object], bool] = lambda obj: False):
    """The object in a model file on the CPU, without running code from it (module docstring).

    A safetensors file gives its networks payload (`safetensors_file.read_networks`). A torch
    file is read with `weights_only=True`, then, if that refuses it, through `safe_pickle`; the
    refused globals' placeholders may stay only where `placeholders_allowed(obj)` says so (the
    original ALAE's files, outside their networks). CheckpointError naming the file otherwise,
    or when it is truncated or not a model file."""
    try:
        if safetensors_file.is_safetensors(path):
            return safetensors_file.read_networks(path)
        with warnings.catch_warnings():  # a file in another pickle protocol is refused or read below, not warned of
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    except Exception as e:  # truncated, not a zip or pickle, a lying safetensors header ...
        raise CheckpointError(f"cannot read model file {path}: {_first_line(e)}") from None
    refused: list[str] = []
    try:
        obj = safe_pickle.torch_load_data(path, refused)
    except Exception as e:
        if refused:
            raise _refusal(path, refused) from None
        raise CheckpointError(f"cannot read model file {path}: {_first_line(e)}") from None
    if refused and not placeholders_allowed(obj):
        raise _refusal(path, refused)
    return obj


def _refusal(path: Path, refused: list[str]) -> CheckpointError:
    names = list(dict.fromkeys(refused))
    more = f" (and {len(names) - 1} more: {', '.join(names[1:4])})" if len(names) > 1 else ""
    return CheckpointError(f"refused {path}: it pickles the global {names[0]}{more}; model files may hold only "
                           "tensors and plain data (nothing from it was run)")


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


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
