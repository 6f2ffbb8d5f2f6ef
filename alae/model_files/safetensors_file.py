"""Networks as a safetensors file: tensors and JSON only, nothing to unpickle.

Layout: the EMA networks under `ema/NAME` and, when the source had them, the training networks
under `model/NAME` (NAME: LatentAutoencoder's state-dict key). The header's metadata (str → str)
holds `format` ("alae-networks"), `format_version` (the checkpoint format, "1"), `config` (the
resolved config as JSON) and `source` (provenance as JSON: the format and path converted from).

`read_networks(path)` gives the same dict as a networks-only alae checkpoint
(`alae.model_files.checkpoint`), so every reader treats the two alike. Headers are checked by the
safetensors library (offsets inside the file, each tensor's bytes matching its dtype and shape);
its refusals and ours raise SafetensorsFileError with the reason in one line.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from alae.files import atomic_write

FORMAT = "alae-networks"
SECTIONS = ("ema", "model")
_HEADER_LENGTH_BYTES = 8  # the format: an unsigned little-endian 64-bit header size, then the JSON header


class SafetensorsFileError(ValueError):
    """A safetensors file is unreadable, lies in its header, or is not alae networks."""


def is_safetensors(path: Path) -> bool:
    """Whether the file starts like a safetensors file (a plausible header size, then '{')."""
    with open(path, "rb") as f:
        head = f.read(_HEADER_LENGTH_BYTES + 1)
    if len(head) < _HEADER_LENGTH_BYTES + 1 or head[-1:] != b"{":
        return False
    return int.from_bytes(head[:_HEADER_LENGTH_BYTES], "little") < Path(path).stat().st_size


def save_networks(path: Path, config: dict, ema: dict, model: dict | None, source: dict, format_version: int) -> Path:
    """Write the networks (see the module docstring) atomically. Every tensor is copied, because
    safetensors refuses tensors sharing memory (an original file's two sets share `w_avg`)."""
    sections = {"ema": ema} | ({} if model is None else {"model": model})
    tensors = {f"{section}/{k}": v.detach().cpu().clone(memory_format=torch.contiguous_format)
               for section, state in sections.items() for k, v in state.items()}
    metadata = {"format": FORMAT, "format_version": str(format_version), "config": json.dumps(config),
                "source": json.dumps(source)}
    data = safetensors_bytes(tensors, metadata=metadata)
    return atomic_write(path, lambda f: f.write(data))


def read_networks(path: Path) -> dict:
    """{format_version, config, ema, model (if present), source} from an alae safetensors file."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as e:  # the library's SafetensorError: a header that lies, a truncated file ...
        raise SafetensorsFileError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    if metadata.get("format") != FORMAT:
        raise SafetensorsFileError(f"its metadata format is {metadata.get('format')!r}, not {FORMAT!r}: "
                                   "not alae networks")
    try:
        payload = {"format_version": int(metadata["format_version"]), "config": json.loads(metadata["config"]),
                   "source": json.loads(metadata.get("source", "{}"))}
    except (KeyError, ValueError) as e:
        raise SafetensorsFileError(f"its metadata is incomplete or not JSON ({type(e).__name__}: {e})") from None
    sections: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        section, _, name = key.partition("/")
        if section not in SECTIONS or not name:
            raise SafetensorsFileError(f"tensor {key!r} is not under ema/ or model/")
        sections.setdefault(section, {})[name] = tensor
    if "ema" not in sections:
        raise SafetensorsFileError("it holds no ema/ networks")
    return payload | sections
