"""Unpickling torch files as data: tensors, containers and primitives, never the file's code.

`torch.load(weights_only=True)` is the first reader of every file. This module is the second,
for files that it refuses (the original ALAE's `.pth` may pickle objects of the original's own
classes beside its state dicts). `torch_load_data(path)` unpickles with a fixed allow-list:

- resolved for real: torch's tensor and parameter rebuilders, its storage classes,
  `collections.OrderedDict` and `collections.Counter` (torch's MultiStepLR keeps its milestones
  in one), numpy's array and scalar reconstructors and `numpy.dtype` (checked with pickletools
  on torch 2.14's zip and legacy formats and numpy 2); `_codecs.encode`, how protocol 2 writes
  bytes, is replaced by `latin1_bytes`, which does only that;
- every other global the file names (`posix.system`, `builtins.eval`, a class of the original
  code, whatever it is) becomes a `Placeholder` class that records the name and is never looked
  up: building it with the file's arguments (REDUCE, NEWOBJ, INST, OBJ) makes an inert
  instance, and its state (BUILD) is dropped;
- BUILD sets state only on OrderedDict instances (a state dict's `_metadata`) and on numpy
  arrays and dtypes (their own `__setstate__`), never on a class or on a tensor, so a file
  cannot patch torch's or numpy's types.

It returns the object and the refused globals' names; the caller decides whether the
placeholders may stay (`alae.model_files.checkpoint.read_model_file`).
"""
from __future__ import annotations

import collections
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

TENSOR_STORAGES = ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")
_REBUILDERS = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state")
# (module, name) as a file spells it → the object it stands for, taken from our own imports: a
# file's names select entries of this table and are never imported or looked up themselves.
ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    **{("torch._utils", name): getattr(torch._utils, name) for name in _REBUILDERS},
    **{("torch", f"{kind}Storage"): getattr(torch, f"{kind}Storage") for kind in TENSOR_STORAGES},
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "Counter"): collections.Counter,
    **{(module, name): getattr(np._core.multiarray, name)
       for module in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct", "scalar")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


def latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """Protocol 2's spelling of a bytes object: `_codecs.encode(text, "latin1")`, nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class Placeholder:
    """What a refused global becomes (one subclass per name, `global_name` = "module.name"):
    accepts any arguments and state, and does nothing."""

    global_name = "?"

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


class DataOnlyUnpickler(pickle._Unpickler):
    """pickle's Python unpickler with the allow-list above; `refused` lists the globals it
    replaced by placeholders, in the order the file named them."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, **kwargs):
        super().__init__(file, **kwargs)
        self.refused: list[str] = []
        self._placeholders: dict[str, type] = {}

    def find_class(self, module, name):
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[module, name]
        if (module, name) == ("_codecs", "encode"):
            return latin1_bytes
        key = f"{module}.{name}"
        if key not in self._placeholders:
            self.refused.append(key)
            self._placeholders[key] = type("Placeholder", (Placeholder,), {"global_name": key})
        return self._placeholders[key]

    def load(self):
        try:
            return super().load()
        except (KeyError, IndexError):  # an unknown opcode or memo key: the Python unpickler's way of saying so
            raise pickle.UnpicklingError("not a valid pickle stream") from None

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, Placeholder) or (isinstance(inst, type) and issubclass(inst, Placeholder)):
            return
        if type(inst) is np.ndarray or isinstance(inst, np.dtype):
            inst.__setstate__(state)
        elif type(inst) is collections.OrderedDict and isinstance(state, dict):
            inst.__dict__.update({str(k): v for k, v in state.items()})
        else:
            raise pickle.UnpicklingError(f"refused to set the state of a {type(inst).__name__}")

    dispatch[pickle.BUILD[0]] = load_build


def _unpickling_module(record: list[str]) -> SimpleNamespace:
    """A `pickle_module` for torch.load whose unpicklers add their refusals to `record`."""

    class Recording(DataOnlyUnpickler):
        def __init__(self, file, **kwargs):
            super().__init__(file, **kwargs)
            self.refused = record

    def load(file, **kwargs):  # torch reads a legacy file's header with `load`
        return Recording(file, **kwargs).load()

    return SimpleNamespace(Unpickler=Recording, load=load, __name__="alae_data_only_pickle")


def torch_load_data(path: Path, refused: list[str]) -> object:
    """The object in the torch file at `path` on the CPU; the refused globals are appended to
    `refused` as they are met (so they are known when torch.load then fails, e.g. on a bare
    pickle without torch's header); exceptions of torch.load and pickle propagate.

    weights_only=False only lets torch take our unpickler: torch subclasses `pickle_module.Unpickler`
    for the zip and the legacy format alike, and its find_class ends in DataOnlyUnpickler's
    (after mapping storage type names, which it resolves to its own dtype records), so every
    global of the file meets the allow-list; tests/test_hostile_files.py checks that."""
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_unpickling_module(refused))


def placeholders_in(obj) -> list[str]:
    """The global names of the placeholders inside dicts, lists, tuples and sets of `obj`."""
    found, stack = [], [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, Placeholder) or (isinstance(item, type) and issubclass(item, Placeholder)):
            found.append(item.global_name)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return list(dict.fromkeys(found))
