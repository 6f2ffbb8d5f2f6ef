"""Networks as safetensors: alae-convert writes them from any model file, every reader takes
them, the same networks give the same pixels, and a file that is not alae networks is one line."""
import json
import struct

import numpy as np
import pytest
import torch
from original_reference import TINY_ARGS, original_file, original_shapes, random_original_state
from PIL import Image
from safetensors.torch import save_file

from alae.config import to_dict
from alae.model_files.checkpoint import CheckpointError, read_model_file
from alae.model_files.loading import ORIGINAL_CHECKPOINT, read_weights
from alae.model_files.safetensors_file import is_safetensors, read_networks, save_networks
from alae.tools import convert, generate


def test_round_trip_keeps_tensors_config_and_provenance(tmp_path, tiny_model):
    weights = read_weights(tiny_model)
    training = {k: v + 1 for k, v in weights.ema.items()}
    path = save_networks(tmp_path / "n.safetensors", to_dict(weights.config), weights.ema, training,
                         {"format": "test", "path": "x"}, 1)
    assert is_safetensors(path) and not is_safetensors(tiny_model)
    payload = read_networks(path)
    assert payload["format_version"] == 1 and payload["source"] == {"format": "test", "path": "x"}
    assert payload["config"] == to_dict(weights.config)
    for section, expected in (("ema", weights.ema), ("model", training)):
        assert payload[section].keys() == expected.keys()
        for name, value in expected.items():
            assert torch.equal(payload[section][name], value) and payload[section][name].dtype == value.dtype


def pixels(folder):
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def test_the_same_networks_give_the_same_images_from_either_file(tmp_path, tiny_model, capsys):
    out = tmp_path / "tiny.safetensors"
    assert convert.main([str(tiny_model), str(out)]) == 0
    for model, folder in ((tiny_model, "from-pt"), (out, "from-safetensors")):
        assert generate.main([str(model), "--seeds", "0-3", "--noise", "const", "--out", str(tmp_path / folder),
                              "--device", "cpu"]) == 0
    a, b = pixels(tmp_path / "from-pt"), pixels(tmp_path / "from-safetensors")
    assert len(a) == 5 and a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert convert.main([str(tiny_model), str(out)]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_an_original_file_converts_to_safetensors_with_both_network_sets(tmp_path):
    nets = random_original_state(original_shapes(**TINY_ARGS), 3)
    original = tmp_path / "model.pth"
    torch.save(original_file(nets), original)
    out = tmp_path / "model.safetensors"
    assert convert.main([str(original), str(out)]) == 0
    direct, converted = read_weights(original), read_weights(out)
    assert to_dict(direct.config)["model"] == to_dict(converted.config)["model"]
    for section in ("ema", "model"):
        for name, value in getattr(direct, section).items():
            assert torch.equal(getattr(converted, section)[name], value), f"{section}.{name}"
    source = read_networks(out)["source"]
    assert source["format"] == ORIGINAL_CHECKPOINT and source["path"] == str(original.resolve())
    assert source["training_networks"] is True


def safetensors_with(path, tensors, metadata):
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize("tensors, metadata, message", [
    ({"ema/w": torch.zeros(2)}, {"format": "something-else"}, "metadata format is 'something-else'"),
    ({"ema/w": torch.zeros(2)}, None, "metadata format is None"),
    ({"ema/w": torch.zeros(2)}, {"format": "alae-networks", "format_version": "1", "config": "{not json"},
     "not JSON"),
    ({"ema/w": torch.zeros(2)}, {"format": "alae-networks", "config": "{}"}, "incomplete"),
    ({"weights": torch.zeros(2)}, {"format": "alae-networks", "format_version": "1", "config": "{}"},
     "'weights' is not under ema/ or model/"),
    ({"model/w": torch.zeros(2)}, {"format": "alae-networks", "format_version": "1", "config": "{}"}, "no ema/"),
])
def test_files_that_are_not_alae_networks_are_one_line_errors(tmp_path, tensors, metadata, message):
    path = safetensors_with(tmp_path / "x.safetensors", tensors, metadata)
    with pytest.raises(CheckpointError, match=f"cannot read model file {path}: .*{message}"):
        read_model_file(path)


def test_a_truncated_header_is_a_one_line_error(tmp_path):
    header = json.dumps({"ema/w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    path = tmp_path / "short.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 8)  # 8 of the 16 bytes
    with pytest.raises(CheckpointError, match=f"cannot read model file {path}"):
        read_model_file(path)
