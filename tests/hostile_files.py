"""A battery of hostile files, built here: each would run `touch MARKER` (or fail loudly) if it
were read with plain pickle / torch.load(weights_only=False) / np.load(allow_pickle=True).

Model files (`model_files(folder, marker)`, name → (path, the global a reader must name)):
- `global_reduce`, `stack_global_reduce`: os.system through GLOBAL (protocol 2) and STACK_GLOBAL
  (protocol 4), then REDUCE, as a bare pickle;
- `inst`, `obj`: protocol 0's INST and protocol 1's OBJ opcodes, written by hand;
- `build`: an importable class whose `__setstate__` runs the command (NEWOBJ + BUILD);
- `legacy`, `zip`: an alae checkpoint carrying the os.system object, in torch's legacy and zip formats;
- `swapped_data_pkl`: a valid torch zip (a tiny model) whose data.pkl was replaced by the REDUCE pickle.
Broken safetensors (`lying_safetensors(folder, valid)`): offsets past the end, a shape that does not
match its bytes. Direction files holding objects (`object_directions(folder, marker)`).
"""
from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch

SYSTEM = f"{os.system.__module__}.system"  # posix.system on Linux: what pickle writes for os.system


class RunsCode:
    """Unpickling it with plain pickle runs `touch marker`."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Trap:
    """Unpickling it with plain pickle runs `touch marker` from `__setstate__` (BUILD); plain
    pickle finds the class because the tests import this file as `hostile_files`."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __setstate__(self, state):
        Path(state["marker"]).touch()


def _touch(marker: Path) -> bytes:
    return f"touch {marker}".encode()


def model_files(folder: Path, marker: Path, valid_torch_zip: Path) -> dict[str, tuple[Path, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[Path, str]] = {}

    def write(name: str, data: bytes, refused: str) -> None:
        path = folder / f"{name}.pt"
        path.write_bytes(data)
        files[name] = (path, refused)

    write("global_reduce", pickle.dumps(RunsCode(marker), protocol=2), SYSTEM)
    write("stack_global_reduce", pickle.dumps(RunsCode(marker), protocol=4), SYSTEM)
    write("inst", b"(S'" + _touch(marker) + b"'\nios\nsystem\n.", "os.system")
    write("obj", b"(cos\nsystem\nS'" + _touch(marker) + b"'\no.", "os.system")
    write("build", pickle.dumps(Trap(marker), protocol=2), "hostile_files.Trap")
    checkpoint = {"format_version": 1, "config": {}, "ema": {"w": torch.zeros(2)}, "extra": RunsCode(marker)}
    for name, zipped in (("legacy", False), ("zip", True)):
        path = folder / f"{name}.pt"
        torch.save(checkpoint, path, _use_new_zipfile_serialization=zipped)
        files[name] = (path, SYSTEM)
    swapped = folder / "swapped_data_pkl.pt"
    with zipfile.ZipFile(valid_torch_zip) as src, zipfile.ZipFile(swapped, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("/data.pkl"):
                data = pickle.dumps(RunsCode(marker), protocol=2)
            dst.writestr(item, data)
    files["swapped_data_pkl"] = (swapped, SYSTEM)
    return files


def _split_safetensors(data: bytes) -> tuple[dict, bytes]:
    size = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + size]), data[8 + size:]


def _join_safetensors(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def lying_safetensors(folder: Path, valid: Path) -> dict[str, Path]:
    """Copies of a valid safetensors file whose header lies about one tensor."""
    header, body = _split_safetensors(valid.read_bytes())
    name = next(k for k in header if k != "__metadata__")
    files = {}
    past_end = json.loads(json.dumps(header))
    begin, _ = past_end[name]["data_offsets"]
    past_end[name]["data_offsets"] = [begin, len(body) + 4096]
    files["offsets_past_the_end"] = past_end
    wrong_shape = json.loads(json.dumps(header))
    wrong_shape[name]["shape"] = [dim * 3 + 1 for dim in wrong_shape[name]["shape"]] or [7]
    files["shape_not_its_bytes"] = wrong_shape
    out = {}
    for kind, lie in files.items():
        path = folder / f"{kind}.safetensors"
        path.write_bytes(_join_safetensors(lie, body))
        out[kind] = path
    return out


def object_directions(folder: Path, marker: Path) -> dict[str, Path]:
    """A direction .npz and an original-style .npy whose arrays hold pickled objects."""
    folder.mkdir(parents=True, exist_ok=True)
    evil = np.array([RunsCode(marker)], dtype=object)
    npz, npy = folder / "objects.npz", folder / "objects.npy"
    np.savez(npz, vector=evil, scale=np.float64(1.0), metadata=np.array("{}"))
    np.save(npy, evil, allow_pickle=True)
    return {"npz": npz, "npy": npy}
