"""Faults of checkpoint writes (alae.model_files.checkpoint, alae.files.atomic_write): a run killed
between a snapshot and latest.pt, a corrupt latest.pt beside a good snapshot, temporaries of
killed writes, Ctrl-C inside torch.save, a full disk or a file-size limit. The resume takes the
newest complete checkpoint, says which, and ends as the uninterrupted run does, bit for bit."""
import errno
import os
import resource
import shutil
import subprocess
import sys

import pytest
import torch

from alae import train
from alae.files import WriteError, atomic_write, save_torch
from alae.model_files.checkpoint import load_checkpoint, save_checkpoint
from fault_runs import assert_same_state, demo_cache, one_error_line, private_mount_prefix, run  # noqa: F401


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run to 0.064 kimg (8 steps, across the lod change); its final checkpoint."""
    out = tmp_path_factory.mktemp("straight")
    assert run(out, 0.064) == 0
    return load_checkpoint(out / "checkpoints" / "latest.pt")


def checkpoints(run_dir):
    return run_dir / "checkpoints"


def test_one_write_per_checkpoint_latest_is_the_snapshot_itself(tmp_path, monkeypatch):
    saves = []
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: saves.append(f) or real_save(obj, f))
    snapshot = save_checkpoint(tmp_path, {"value": torch.arange(1000)}, 1.0, keep=2)
    assert len(saves) == 1  # one payload written
    assert os.path.samefile(snapshot, tmp_path / "latest.pt")  # latest.pt: a hard link, an ordinary file
    assert torch.load(tmp_path / "latest.pt", weights_only=True)["value"].equal(torch.arange(1000))
    save_checkpoint(tmp_path, {"value": torch.arange(5)}, 2.0, keep=2)
    assert os.path.samefile(tmp_path / "snapshot-000002.0kimg.pt", tmp_path / "latest.pt")
    assert torch.load(tmp_path / "snapshot-000001.0kimg.pt", weights_only=True)["value"].numel() == 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt", "snapshot-000001.0kimg.pt",
                                                          "snapshot-000002.0kimg.pt"]


def test_without_hard_links_latest_is_a_copy(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    snapshot = save_checkpoint(tmp_path, {"value": torch.arange(10)}, 1.0, keep=2)
    assert not os.path.samefile(snapshot, tmp_path / "latest.pt")
    assert (tmp_path / "latest.pt").read_bytes() == snapshot.read_bytes()
    assert not list(tmp_path.glob("*.tmp"))


def test_a_kill_between_snapshot_and_latest_resumes_from_the_snapshot_and_removes_the_temporary(
        tmp_path, straight, capsys):
    assert run(tmp_path, 0.016, "log.kimg_per_checkpoint=0.016") == 0  # checkpoint at step 2
    assert run(tmp_path, 0.032, "log.kimg_per_checkpoint=0.016", resume="auto") == 0  # and at step 4
    # As a kill -9 during the first write of latest.pt left a run written the old way: the
    # step-4 snapshot complete, latest.pt not there yet and its temporary half written.
    latest = checkpoints(tmp_path) / "latest.pt"
    torn = latest.read_bytes()[:5000]
    latest.unlink()
    (checkpoints(tmp_path) / "latest.pt.tmp").write_bytes(torn)
    (tmp_path / "samples" / "samples-000000.016.png.tmp").write_bytes(b"\x89PNG")
    capsys.readouterr()
    assert run(tmp_path, 0.064, resume="auto") == 0
    log = (tmp_path / "log.txt").read_text()
    assert "latest.pt is missing: resuming from the newest complete checkpoint, snapshot-000000.0kimg.pt " \
           "(0.032 kimg)" in log
    assert "resumed from" in log and "at 0.0 kimg (step 4)" in log
    assert f"removed {checkpoints(tmp_path) / 'latest.pt.tmp'} (5.0 kB), left by an interrupted write" in log
    assert not list(tmp_path.rglob("*.tmp"))
    assert_same_state(straight, load_checkpoint(latest))


def test_a_corrupt_latest_beside_a_good_snapshot_falls_back_to_it_saying_so(tmp_path, straight, capsys):
    assert run(tmp_path, 0.016) == 0
    snapshot = checkpoints(tmp_path) / "snapshot-000000.0kimg.pt"
    corrupt = checkpoints(tmp_path) / "corrupt"
    corrupt.write_bytes(snapshot.read_bytes()[: snapshot.stat().st_size // 2])  # a copy cut short
    os.replace(corrupt, checkpoints(tmp_path) / "latest.pt")  # (a hard link would have cut the snapshot too)
    assert run(tmp_path, 0.064, resume="auto") == 0
    log = (tmp_path / "log.txt").read_text()
    assert f"passed over: cannot read model file {checkpoints(tmp_path) / 'latest.pt'}: " in log
    assert "resuming from the newest complete checkpoint, snapshot-000000.0kimg.pt (0.016 kimg)" in log
    assert_same_state(straight, load_checkpoint(checkpoints(tmp_path) / "latest.pt"))


def test_nothing_readable_is_an_error_not_a_fresh_start(tmp_path, capsys):
    assert run(tmp_path, 0.016) == 0
    for path in checkpoints(tmp_path).glob("*.pt"):
        path.unlink()
        path.write_bytes(b"garbage")
    capsys.readouterr()
    assert run(tmp_path, 0.032, resume="auto") == 1
    assert f"no readable checkpoint in {checkpoints(tmp_path)}" in one_error_line(capsys.readouterr().err)


def test_a_run_written_by_older_code_still_resumes(tmp_path, straight):
    """Two copies (snapshot, then latest.pt) and a config.yaml written at the start."""
    assert run(tmp_path, 0.024) == 0
    latest = checkpoints(tmp_path) / "latest.pt"
    shutil.copy(latest, checkpoints(tmp_path) / "copy")
    os.replace(checkpoints(tmp_path) / "copy", latest)
    (tmp_path / "run.lock").unlink()
    assert run(tmp_path, 0.064, resume="auto") == 0
    assert_same_state(straight, load_checkpoint(latest))


class InterruptedWriter:
    """A file that raises KeyboardInterrupt (as Ctrl-C would) once `after` bytes are written."""

    def __init__(self, f, after: int):
        self.f, self.left = f, after

    def write(self, data) -> int:
        self.left -= len(data)
        if self.left < 0:
            raise KeyboardInterrupt
        return self.f.write(data)


def test_ctrl_c_inside_torch_save_is_a_keyboard_interrupt_and_leaves_no_temporary(tmp_path):
    target = save_torch({"value": torch.zeros(10)}, tmp_path / "x.pt")
    payload = {f"t{i}": torch.randn(10_000) for i in range(20)}
    with pytest.raises(KeyboardInterrupt):  # torch.save itself turns it into RuntimeError "unexpected pos"
        atomic_write(target, lambda f: torch.save(payload, InterruptedWriter(f, 300_000)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pt"]
    assert torch.load(target, weights_only=True)["value"].equal(torch.zeros(10))


class FileSizeLimit:
    """RLIMIT_FSIZE (ulimit -f) on this process while inside; writes past it fail with EFBIG
    (Python ignores SIGXFSZ)."""

    def __init__(self, limit: int):
        self.limit = limit

    def __enter__(self):
        self.previous = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit, self.previous[1]))

    def __exit__(self, *exc):
        resource.setrlimit(resource.RLIMIT_FSIZE, self.previous)


def test_a_file_size_limit_during_a_checkpoint_write_is_one_line_logged_and_loses_nothing(tmp_path, capsys):
    assert run(tmp_path, 0.016) == 0
    latest = checkpoints(tmp_path) / "latest.pt"
    before, size = load_checkpoint(latest), latest.stat().st_size
    capsys.readouterr()
    with FileSizeLimit(size // 2):
        assert run(tmp_path, 0.032, resume="auto") == 1
    line = one_error_line(capsys.readouterr().err)
    snapshot = checkpoints(tmp_path) / "snapshot-000000.0kimg.pt"
    assert f"cannot write {snapshot}: file too large for the file-size limit (ulimit -f) of " \
           f"{size // 2 / 1000:.1f} kB; it needs about " in line
    needs = float(line.split("it needs about ")[1].split(" kB")[0]) * 1000
    assert size * 0.8 < needs <= size  # the tensors' bytes: most of the file
    assert line in (tmp_path / "log.txt").read_text()  # the event is in the run's log
    assert not list(tmp_path.rglob("*.tmp"))
    assert load_checkpoint(latest)["progress"] == before["progress"]
    assert run(tmp_path, 0.032, resume="auto") == 0  # room again: the run goes on


FULL_DISK_WRITE = """
import os, sys
from pathlib import Path
import torch
from alae.cli import run_tool
from alae.files import save_text, save_torch

target = Path(sys.argv[1]) / "x.pt"
save_text("previous", target)
status = run_tool("write", lambda: save_torch({"t": torch.zeros(100_000)}, target))
print(sorted(os.listdir(target.parent)), target.read_text())
sys.exit(status)
"""


def test_a_full_disk_during_a_write_names_the_path_and_the_space(tmp_path):
    mount = tmp_path / "disk"
    prefix = private_mount_prefix(mount, "size=128k")
    proc = subprocess.run([*prefix, sys.executable, "-c", FULL_DISK_WRITE, str(mount)], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc.stderr, "write")
    assert f"cannot write {mount}/x.pt: no space left on device; it needs about 400.0 kB, " in line
    assert line.endswith(f" free on {mount}")
    assert proc.stdout == "['x.pt'] previous\n"  # the previous file, and no temporary


def test_atomic_write_turns_only_space_and_permission_errors_into_write_errors(tmp_path):
    def failing(code):
        def write(f):
            f.write(b"x" * 100)
            raise OSError(code, os.strerror(code))
        return write

    for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
        with pytest.raises(WriteError, match=f"cannot write {tmp_path / 'f'}: "):
            atomic_write(tmp_path / "f", failing(code), size_hint=5000)
    with pytest.raises(OSError) as error:  # anything else stays what it was
        atomic_write(tmp_path / "f", failing(errno.EIO))
    assert not isinstance(error.value, WriteError) and error.value.errno == errno.EIO
    assert list(tmp_path.iterdir()) == []


def test_an_override_that_failed_does_not_poison_the_next_resume(tmp_path, straight, capsys):
    assert run(tmp_path, 0.016) == 0
    config = (tmp_path / "config.yaml").read_text()
    assert run(tmp_path, 0.064, "train.lr_per_lod=[1000000.0, 1000000.0]", resume="auto") == 1  # diverges at once
    assert "non-finite loss_latent" in capsys.readouterr().err
    assert (tmp_path / "config.yaml").read_text() == config  # no checkpoint was written with it
    # The next resume, without --config or overrides: the checkpoint's config, as if nothing had happened.
    assert train.main(["--out", str(tmp_path), "--resume", "auto", "--kimg", "0.064", "--device", "cpu"]) == 0
    assert_same_state(straight, load_checkpoint(checkpoints(tmp_path) / "latest.pt"))


def test_a_resume_takes_the_checkpoints_config_plus_its_own_overrides_not_config_yaml(tmp_path, straight):
    assert run(tmp_path, 0.016) == 0
    # config.yaml edited by hand (or written by a command whose checkpoint never came): not what resumes.
    (tmp_path / "config.yaml").write_text((tmp_path / "config.yaml").read_text().replace("r1_gamma: 10.0",
                                                                                        "r1_gamma: 99.0"))
    argv = ["--out", str(tmp_path), "--resume", "auto", "--device", "cpu"]
    assert train.main([*argv, "--kimg", "0.032", "log.kimg_per_sample=0.5"]) == 0
    saved = load_checkpoint(checkpoints(tmp_path) / "latest.pt")["config"]
    assert saved["alae"]["r1_gamma"] == 10.0 and saved["log"]["kimg_per_sample"] == 0.5
    assert "kimg_per_sample: 0.5" in (tmp_path / "config.yaml").read_text()  # rewritten with that checkpoint
    assert train.main([*argv, "--kimg", "0.064"]) == 0
    assert_same_state(straight, load_checkpoint(checkpoints(tmp_path) / "latest.pt"))
