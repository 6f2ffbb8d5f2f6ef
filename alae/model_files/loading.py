"""The one loader for every model file: a run directory, an alae checkpoint, alae networks as
safetensors, an original ALAE `.pth`.

    cfg, model = load_networks("runs/ffhq", device)         # EMA networks and w_avg, eval mode
    weights = read_weights("model_157.pth")                 # both sets of state dicts, for --init

The format is recognised from the file's content, never its extension: an alae checkpoint (or a
safetensors file of alae networks, read as one) is a dict with `format_version`; an original
ALAE file is a dict with a `models` dict (`alae.model_files.original_alae`). Anything else is
refused with a one-line error saying what was found. No file runs code (`read_model_file`).
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from alae.config import Config, ConfigError, ModelConfig, default_config_for, from_dict
from alae.model import LatentAutoencoder
from alae.model_files.checkpoint import (
    CheckpointError,
    check_format,
    checkpoint_path,
    is_alae_checkpoint,
    read_model_file,
)
from alae.model_files.original_alae import (
    convert_original,
    dropped_objects,
    ignorable_placeholders,
    is_original_checkpoint,
)

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
    model: LatentAutoencoder


def _describe(obj) -> str:
    if isinstance(obj, dict):
        keys = sorted(map(str, obj))
        return "a dict with keys " + ", ".join(keys[:10]) + (" ..." if len(keys) > 10 else "")
    return f"a {type(obj).__name__}"


def check_states_match(states: list[dict[str, torch.Tensor]], cfg: Config, where: str) -> None:
    """CheckpointError unless every state dict holds exactly the tensors of LatentAutoencoder(cfg) (names, shapes)."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in LatentAutoencoder(cfg).state_dict().items()}
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
    path = checkpoint_path(path)
    obj = read_model_file(path, placeholders_allowed=ignorable_placeholders)
    if is_alae_checkpoint(obj):
        return _alae_weights(check_format(obj, path), path)
    if is_original_checkpoint(obj):
        converted = convert_original(obj, str(path))
        cfg = default_config_for(converted.config, f"converted-{path.stem}")
        dropped = dropped_objects(obj)
        notes = converted.notes + ([f"dropped {len(dropped)} pickled objects outside the networks, never built: "
                                    + ", ".join(dropped)] if dropped else [])
        return Weights(cfg, converted.ema, converted.model, None, ORIGINAL_CHECKPOINT, path, notes)
    raise CheckpointError(f"{path} is neither an alae checkpoint nor an original ALAE model: found {_describe(obj)}")


def _alae_weights(payload: dict, path: Path) -> Weights:
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
    check_states_match([ema] if model is None else [ema, model], cfg, str(path))
    return Weights(cfg, ema, model, payload.get("progress"), ALAE_CHECKPOINT, path, notes)


def networks_from_weights(weights: Weights, device: torch.device | str = "cpu", verbose: bool = True) -> Networks:
    """(model config, the model with the EMA networks and w_avg) in eval mode with gradients off, on
    `device`. The weights' notes (e.g. "no EMA networks") go to stderr when verbose."""
    if verbose:
        for note in weights.notes:
            print(f"note: {weights.path}: {note}", file=sys.stderr)
    model = LatentAutoencoder(weights.config)
    model.load_state_dict(weights.ema)
    return Networks(weights.config.model, model.to(device).eval().requires_grad_(False))


def load_networks(path: str | Path, device: torch.device | str = "cpu", verbose: bool = True) -> Networks:
    """(model config, the model with the EMA networks and w_avg) from any model file (see the module
    docstring), ready for inference on `device`."""
    return networks_from_weights(read_weights(path), device, verbose)


def model_fingerprint(model: LatentAutoencoder) -> str:
    """12 hex digits identifying a model's weights (SHA-256 over F, G and E's parameters and w_avg)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if not name.startswith("D."):
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]
