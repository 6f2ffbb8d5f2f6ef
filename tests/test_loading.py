"""load_networks on alae checkpoints and run directories: the EMA networks, inference-ready;
clear one-line errors for a wrong path, a foreign file, or a config that disagrees with its tensors."""
import pytest
import torch

from alae.model_files.checkpoint import CheckpointError, save_networks_checkpoint
from alae.model_files.loading import load_networks, model_fingerprint, read_weights


@pytest.fixture
def checkpoint(tiny_model):
    return torch.load(tiny_model, weights_only=False)


def test_run_directory_and_file_give_the_ema_networks(tiny_model, checkpoint, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.pt").write_bytes(tiny_model.read_bytes())
    cfg, model = load_networks(run)
    assert cfg.resolution == 16 and not model.training
    assert all(not p.requires_grad for p in model.parameters())
    for name, tensor in checkpoint["ema"].items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_fingerprint_follows_the_weights(tiny_model):
    _, a = load_networks(tiny_model)
    _, b = load_networks(tiny_model)
    assert model_fingerprint(a) == model_fingerprint(b) and len(model_fingerprint(a)) == 12
    with torch.no_grad():
        b.G.const.add_(1e-3)
    assert model_fingerprint(a) != model_fingerprint(b)


def test_a_config_that_disagrees_with_the_tensors(checkpoint, tmp_path):
    config = with_model(checkpoint["config"], channels=[32, 32, 8])
    path = save_networks_checkpoint(tmp_path / "bad.pt", config, None, checkpoint["ema"], {})
    with pytest.raises(CheckpointError, match=r"its config disagrees with its tensors: G\.blocks\.2\.[a-z_0-9.]+ is "
                                              r"\[\d+(, \d+)*\] in the file but \[\d+(, \d+)*\] for the config"):
        load_networks(path)


def test_missing_paths_and_folders_without_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="model not found"):
        read_weights(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="not a run directory"):
        read_weights(tmp_path)


def test_a_checkpoint_without_ema_networks_uses_the_training_ones_with_a_note(checkpoint, tmp_path, capsys):
    payload = {k: v for k, v in checkpoint.items() if k != "ema"}
    payload["model"] = checkpoint["ema"]
    torch.save(payload, tmp_path / "no-ema.pt")
    load_networks(tmp_path / "no-ema.pt")
    assert "no EMA networks" in capsys.readouterr().err


def test_invalid_config_and_unknown_format_version(checkpoint, tmp_path):
    config = with_model(checkpoint["config"], resolution=48)
    torch.save(dict(checkpoint, config=config), tmp_path / "bad-config.pt")
    with pytest.raises(CheckpointError, match="its config is invalid: model.resolution"):
        read_weights(tmp_path / "bad-config.pt")
    torch.save(dict(checkpoint, format_version=99), tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format 99"):
        read_weights(tmp_path / "future.pt")


def with_model(config: dict, **model_fields) -> dict:
    return dict(config, model=dict(config["model"], **model_fields))
