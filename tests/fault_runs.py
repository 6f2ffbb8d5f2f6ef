"""What the fault-injection tests (tests/test_faults_*.py) share: the tiny run of
tests/test_train.py (8×8 ALAE on the embedded faces, 8 images a step, a tick every 2 steps) in
this process or as an `alae-train` process of its own, waiting on what a run writes, and a
private file system (a small or read-only tmpfs) where user namespaces allow one."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alae import train
from test_train import TINY, assert_same_state, rows  # noqa: F401  (re-exported to the fault tests)

PROGRESS_BAR = re.compile(r"\s*\d+%\||(.+: )?\S+/\S+ \S+ \(\d+\.\d%\)")  # a tqdm frame, or alae.progress's line
STARTUP_TIMEOUT_S = 120  # a child's imports and first steps on a busy 2-core machine


@pytest.fixture(scope="module", autouse=True)
def demo_cache(tmp_path_factory):
    """The embedded-face database, built once per module in a private cache (children inherit it)."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("cache")
        mp.setenv("ALAE_CACHE", str(path))
        yield path


def train_args(out, kimg, *extra, resume=None) -> list[str]:
    argv = ["--config", "demo", "--out", str(out), "--kimg", str(kimg), "--device", "cpu", *TINY, *extra]
    return argv + (["--resume", resume] if resume else [])


def run(out, kimg, *extra, resume=None) -> int:
    """alae-train in this process; its exit status."""
    return train.main(train_args(out, kimg, *extra, resume=resume))


def start(out, kimg, *extra, resume=None, prefix=(), **popen) -> subprocess.Popen:
    """`python -m alae.train ...` as a process of its own (text stdout and stderr piped)."""
    cmd = [*prefix, sys.executable, "-m", "alae.train", *train_args(out, kimg, *extra, resume=resume)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), **popen)  # threads as this process's


def wait_for_ticks(proc: subprocess.Popen, run_dir: Path, count: int) -> int:
    """Wait until the run has logged `count` tick status lines; the number logged."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        log = run_dir / "log.txt"
        ticks = len(re.findall(r"\d tick \d+  kimg ", log.read_text())) if log.is_file() else 0
        if ticks >= count:
            return ticks
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {count} ticks:\n{proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no {count} ticks after {STARTUP_TIMEOUT_S} s")


def finish(proc: subprocess.Popen, timeout: float = STARTUP_TIMEOUT_S) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a child, killed if it overruns."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running after {timeout:.0f} s\n{err}")
    return proc.returncode, out, err


def one_error_line(err: str, prog: str = "alae-train") -> str:
    """The single line of a command's stderr besides its progress bar's frames (no traceback,
    nothing else), asserted to be an error."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and not PROGRESS_BAR.match(line)]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    return lines[0]


def private_mount_prefix(mount_point: Path, options: str) -> list[str]:
    """A command prefix running the rest in a user and mount namespace of its own with a tmpfs
    (`options`, e.g. 'size=64k' or 'ro') at `mount_point`; skips the test where that is not allowed."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs util-linux unshare")
    mount_point.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run([unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o {options} tmpfs '{mount_point}'"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces cannot mount a tmpfs here: {probe.stderr.strip()}")
    return [unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o {options} tmpfs '{mount_point}' && exec \"$@\"", "sh"]
