"""The one loader for every model file: a run directory, an alae checkpoint, an original ALAE `.pth`.

    cfg, model = load_networks("runs/ffhq", device)         # EMA networks and w_avg, eval mode
    weights = read_weights("model_157.pth")                 # both sets of state dicts, for --init

The format is recognised from the file's content, never its extension: an alae checkpoint is a
dict with `format_version`; an original ALAE file is a dict with a `models` dict
(`alae.original_alae`). Anything else is refused with a one-line error saying what was found.
"""
from __future__ import annotations

import hashlib
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import torch

from alae.checkpoint import FORMAT_VERSION, LATEST, CheckpointError
from alae.config import Config, ConfigError, ModelConfig, default_config_for, from_dict
from alae.model import ALAE
from alae.original_alae import convert_original, is_original_checkpoint

ALAE_CHECKPOINT = "alae checkpoint"
ORIGINAL_CHECKPOINT = "original ALAE checkpoint"


@dataclass
class Weights:
    """The networks of a model file as our state dicts (CPU tensors).

    config: the full resolved Config for alae checkpoints; for an original file, the defaults
    with the inferred model section. ema: the EMA networks (what tools use). model: the training
    networks, or None when the file holds one set only. progress: an alae checkpoint's schedule
    position (dict) or None. kind: ALAE_CHECKPOINT or ORIGINAL_CHECKPOINT. notes: decisions to report.
    """

    config: Config
    ema: dict[str, torch.Tensor]
    model: dict[str, torch.Tensor] | None
    progress: dict | None
    kind: str
    path: Path
    notes: list[str]


class Networks(NamedTuple):
    config: ModelConfig
    model: ALAE


def resolve_model_path(path: str | Path) -> Path:
    """A run directory → its `checkpoints/latest.pt`; a file → itself. CheckpointError if missing."""
    path = Path(path).expanduser()
    if path.is_dir():
        for candidate in (path / "checkpoints" / LATEST, path / LATEST):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{path} is a folder without checkpoints/{LATEST}: not a run directory")
    if not path.is_file():
        raise CheckpointError(f"model not found: {path}")
    return path


class _Unavailable:
    """Stands in for a pickled object whose class is not importable here (e.g. the original
    code's loss tracker in a checkpoint's `auxiliary` entry): accepts any arguments and state."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


class _TolerantUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return _Unavailable


_TOLERANT_PICKLE = SimpleNamespace(Unpickler=_TolerantUnpickler, load=pickle.load, __name__="alae_tolerant_pickle")


def _torch_load(path: Path):
    """torch.load on the CPU: tensors-only unpickling first; full unpickling for files that need
    it (the original's checkpoints may carry optimizer and tracker objects), where classes that
    cannot be imported here load as placeholders (they are never networks)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    except Exception as e:  # truncated, not a zip or pickle, ...
        raise CheckpointError(f"cannot read {path}: {str(e).splitlines()[0]}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_TOLERANT_PICKLE)
    except Exception as e:
        raise CheckpointError(f"cannot read {path}: {str(e).splitlines()[0]}") from None


def _describe(obj) -> str:
    if isinstance(obj, dict):
        keys = sorted(map(str, obj))
        return "a dict with keys " + ", ".join(keys[:10]) + (" ..." if len(keys) > 10 else "")
    return f"a {type(obj).__name__}"


def check_states_match(states: list[dict[str, torch.Tensor]], cfg: ModelConfig, where: str) -> None:
    """CheckpointError unless every state dict holds exactly the tensors of ALAE(cfg) (names, shapes)."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in ALAE(cfg).state_dict().items()}
    for state in states:
        problems = [f"{k} missing" for k in expected if k not in state]
        problems += [f"{k} unexpected" for k in state if k not in expected]
        problems += [f"{k} is {list(state[k].shape)} in the file but {list(s)} for the config"
                     for k, s in expected.items() if k in state and tuple(state[k].shape) != s]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise CheckpointError(f"{where}: its config disagrees with its tensors: {problems[0]}{more}")


def read_weights(path: str | Path) -> Weights:
    """The networks in a run directory, alae checkpoint or original ALAE file (see module docstring)."""
    path = resolve_model_path(path)
    obj = _torch_load(path)
    if isinstance(obj, dict) and "format_version" in obj:
        return _alae_weights(obj, path)
    if is_original_checkpoint(obj):
        converted = convert_original(obj, str(path))
        cfg = default_config_for(converted.config, f"converted-{path.stem}")
        return Weights(cfg, converted.ema, converted.model, None, ORIGINAL_CHECKPOINT, path, converted.notes)
    raise CheckpointError(f"{path} is neither an alae checkpoint nor an original ALAE model: found {_describe(obj)}")


def _alae_weights(payload: dict, path: Path) -> Weights:
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {payload['format_version']}, this alae reads "
                              f"format {FORMAT_VERSION}")
    if not isinstance(payload.get("config"), dict) or not isinstance(payload.get("ema", payload.get("model")), dict):
        raise CheckpointError(f"{path} is an alae checkpoint without a config or networks")
    try:
        cfg = from_dict(payload["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: its config is invalid: {e}") from None
    notes = []
    ema = payload.get("ema")
    if ema is None:
        notes.append("no EMA networks in the checkpoint; using the training networks")
        ema = payload["model"]
    model = payload.get("model") if payload.get("ema") is not None else None
    check_states_match([ema] if model is None else [ema, model], cfg.model, str(path))
    return Weights(cfg, ema, model, payload.get("progress"), ALAE_CHECKPOINT, path, notes)


def networks_from_weights(weights: Weights, device: torch.device | str = "cpu", verbose: bool = True) -> Networks:
    """(model config, ALAE with the EMA networks and w_avg) in eval mode with gradients off, on
    `device`. The weights' notes (e.g. "no EMA networks") go to stderr when verbose."""
    if verbose:
        for note in weights.notes:
            print(f"note: {weights.path}: {note}", file=sys.stderr)
    model = ALAE(weights.config.model)
    model.load_state_dict(weights.ema)
    return Networks(weights.config.model, model.to(device).eval().requires_grad_(False))


def load_networks(path: str | Path, device: torch.device | str = "cpu", verbose: bool = True) -> Networks:
    """(model config, ALAE with the EMA networks and w_avg) from any model file (see the module
    docstring), ready for inference on `device`."""
    return networks_from_weights(read_weights(path), device, verbose)


def model_fingerprint(model: ALAE) -> str:
    """12 hex digits identifying a model's weights (SHA-256 over F, G and E's parameters and w_avg)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if not name.startswith("D."):
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]
