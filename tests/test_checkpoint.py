"""Checkpoints are written atomically, rotate, and refuse foreign or damaged files clearly."""
import os

import pytest
import torch

from alae.model_files import checkpoint
from alae.model_files.checkpoint import CheckpointError, find_resume_path, load_checkpoint, save_checkpoint


def test_save_load_round_trip_and_rotation(tmp_path):
    for kimg in (1.0, 2.0, 3.0, 4.0):
        save_checkpoint(tmp_path, {"value": torch.tensor(kimg)}, kimg, keep=2)
    snapshots = sorted(p.name for p in tmp_path.glob("snapshot-*.pt"))
    assert snapshots == ["snapshot-000003.0kimg.pt", "snapshot-000004.0kimg.pt"]
    payload = load_checkpoint(tmp_path / "latest.pt")
    assert payload["value"].item() == 4.0 and payload["format_version"] == checkpoint.FORMAT_VERSION
    assert set(payload) == {"value", "format_version"}  # nothing added: no RNG state (training draws are seeded)
    assert not list(tmp_path.glob("*.tmp"))


def test_crash_during_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"value": 1}, 1.0, keep=3)

    def dying_save(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, {"value": 2}, 2.0, keep=3)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "latest.pt")["value"] == 1


def test_bad_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read model file .*junk.pt"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not an alae checkpoint"):
        load_checkpoint(foreign)
    future = tmp_path / "future.pt"
    torch.save({"format_version": 999}, future)
    with pytest.raises(CheckpointError, match="format 999"):
        load_checkpoint(future)


def test_find_resume_path(tmp_path):
    assert find_resume_path("auto", tmp_path) is None
    save_checkpoint(tmp_path / "checkpoints", {}, 1.0, keep=1)
    assert find_resume_path("auto", tmp_path) == tmp_path / "checkpoints" / "latest.pt"
    assert find_resume_path(str(tmp_path), tmp_path / "elsewhere") == tmp_path / "checkpoints" / "latest.pt"
    with pytest.raises(CheckpointError, match="not found"):
        find_resume_path(os.fspath(tmp_path / "missing.pt"), tmp_path)


def test_training_checkpoints_are_plain_data(tmp_path):
    """What alae writes reads with torch's tensors-only unpickler (no fallback needed)."""
    save_checkpoint(tmp_path, {"config": {"name": "x"}, "model": torch.nn.Linear(2, 2).state_dict(),
                               "optimizers": {"G": torch.optim.Adam(torch.nn.Linear(2, 2).parameters()).state_dict()},
                               "progress": {"images": 10}}, 1.0, keep=1)
    payload = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert payload["progress"] == {"images": 10} and payload["format_version"] == checkpoint.FORMAT_VERSION
