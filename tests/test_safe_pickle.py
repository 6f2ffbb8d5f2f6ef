"""The fallback unpickler: the allow-list resolves what tensors, state dicts and numpy data need;
every other global is an inert placeholder; BUILD cannot patch a class."""
import collections
import io
import pickle

import numpy as np
import pytest
import torch

from alae.model_files.safe_pickle import Placeholder, placeholders_in, torch_load_data
from hostile_files import SYSTEM, RunsCode


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_tensors_state_dicts_and_numpy_data_load_as_themselves(tmp_path, zipped):
    linear = torch.nn.Linear(3, 2)
    data = {"state": linear.state_dict(), "param": torch.nn.Parameter(torch.arange(3.0)), "half": torch.ones(2).half(),
            "array": np.arange(6.0).reshape(2, 3), "objects": np.array([1, "a"], dtype=object),
            "scalar": np.float64(2.5), "counter": collections.Counter([4, 4, 7]), "bytes": b"\x00\xff",
            "nested": [(1, 2.0, "three", None, True)]}
    path = tmp_path / "data.pt"
    torch.save(data, path, _use_new_zipfile_serialization=zipped)
    refused = []
    loaded = torch_load_data(path, refused)
    assert refused == []
    assert loaded["state"]._metadata == linear.state_dict()._metadata  # set by BUILD on the OrderedDict
    for name, value in linear.state_dict().items():
        assert torch.equal(loaded["state"][name], value)
    assert isinstance(loaded["param"], torch.nn.Parameter) and torch.equal(loaded["param"], data["param"])
    assert loaded["half"].dtype == torch.float16
    np.testing.assert_array_equal(loaded["array"], data["array"])
    assert loaded["objects"].tolist() == [1, "a"]
    assert type(loaded["scalar"]) is np.float64 and loaded["scalar"] == 2.5
    assert loaded["counter"] == collections.Counter([4, 4, 7]) and loaded["bytes"] == b"\x00\xff"
    assert loaded["nested"] == data["nested"]


def test_other_globals_become_named_placeholders_and_nothing_runs(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "mixed.pt"
    torch.save({"weights": torch.arange(3.0), "extra": [RunsCode(marker)], "type": collections.defaultdict}, path)
    refused = []
    loaded = torch_load_data(path, refused)
    assert not marker.exists()
    assert refused == [SYSTEM, "collections.defaultdict"]
    assert torch.equal(loaded["weights"], torch.arange(3.0))
    assert isinstance(loaded["extra"][0], Placeholder) and loaded["type"].global_name == "collections.defaultdict"
    assert sorted(placeholders_in(loaded)) == sorted([SYSTEM, "collections.defaultdict"])
    assert placeholders_in({"weights": loaded["weights"]}) == []


@pytest.mark.parametrize("stream, message", [
    # GLOBAL collections.OrderedDict, then BUILD {'x': 1} on the class itself
    (b"\x80\x02ccollections\nOrderedDict\n}X\x01\x00\x00\x00xK\x01sb.", "refused to set the state of a type"),
    # protocol 2's bytes spelling with another codec than latin1
    (b"\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00hiX\x05\x00\x00\x00rot13\x86R.", "refused _codecs.encode"),
    (b"not a pickle", "not a valid pickle stream"),
])
def test_what_the_unpickler_refuses_outright(tmp_path, stream, message):
    path = tmp_path / "stream.pt"
    path.write_bytes(stream)
    with pytest.raises(pickle.UnpicklingError, match=message):
        torch_load_data(path, [])
    assert collections.OrderedDict.__dict__.get("x") is None


def test_the_control_plain_pickle_would_run_it(tmp_path):
    marker = tmp_path / "code-ran"
    pickle.load(io.BytesIO(pickle.dumps(RunsCode(marker))))
    assert marker.exists()


def test_allowed_globals_are_taken_from_the_table_and_nothing_is_imported(monkeypatch):
    """A file's module and name only select an entry of ALLOWED_GLOBALS: no import, no getattr by its names."""
    import builtins

    from alae.model_files.safe_pickle import ALLOWED_GLOBALS, DataOnlyUnpickler

    def no_import(*args, **kwargs):
        raise AssertionError(f"the unpickler imported {args[0]!r}")

    unpickler = DataOnlyUnpickler(io.BytesIO(b""))
    monkeypatch.setattr(builtins, "__import__", no_import)
    assert unpickler.find_class("torch._utils", "_rebuild_tensor_v2") is torch._utils._rebuild_tensor_v2
    assert unpickler.find_class("collections", "OrderedDict") is collections.OrderedDict
    assert issubclass(unpickler.find_class("os", "system"), Placeholder)
    assert all(not isinstance(v, str) for v in ALLOWED_GLOBALS.values())
