"""The training CLI under real `torchrun` on CPU (gloo): one run directory, resume on another
world size, a dead rank ends the job, `--max-restarts` continues, a bad world size is one line.

Every test launches `python -m torch.distributed.run` (= `torchrun`) with the interpreter running
pytest, a free port for the c10d rendezvous and OMP_NUM_THREADS=1 for the children. Each launch
costs ~10 s of process start-up on 2 cores; the training itself is a tiny 8×8 model.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from alae.model_files.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

# 8×8 model, global batch 8: lod 0 for 4 steps, then lod 1 fades in over 2 steps and trains stable.
TINY = ["model.resolution=8", "model.channels=[16, 8]", "model.latent_dim=16", "model.mapping_layers=2",
        "train.batch_per_lod=[8, 8]", "train.lr_per_lod=[0.002, 0.003]", "train.kimg_fade=0.016",
        "train.kimg_stable=0.032", "data.holdout=4", "data.workers=0", "log.grid_size=2",
        "log.kimg_per_checkpoint=1", "log.kimg_per_sample=1", "log.kimg_per_tick=0.016"]
LAUNCH_TIMEOUT_S = 180  # a hung job fails the test instead of stalling CI


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Children's environment: a demo-data cache shared by this module, one thread each, no stray ranks."""
    e = dict(os.environ, ALAE_CACHE=str(tmp_path_factory.mktemp("cache")), OMP_NUM_THREADS="1",
             PYTHONUNBUFFERED="1")
    e["ALAE_DIST_TIMEOUT_S"] = "60"  # a collective waiting on a dead peer fails within a minute
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT"):
        e.pop(k, None)
    return e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_stray_workers(marker: str) -> None:
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and marker.encode() in open(f"/proc/{pid}/cmdline", "rb").read():
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def torchrun(nproc: int, target: list[str], env: dict, *launcher_args: str, timeout: float = LAUNCH_TIMEOUT_S):
    """`torchrun --nproc_per_node=N [launcher args] TARGET...`; returns (CompletedProcess, wall seconds).

    A job that overruns `timeout` fails the test and is taken down whole: SIGTERM to torchrun
    (its agent then stops the workers, which run in sessions of their own), then SIGKILL to
    whatever is left of it: the launcher's session and any process still naming the run's --out.
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--nnodes=1",
           "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}", *launcher_args, *target]
    start = time.perf_counter()
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as launcher:
        try:
            stdout, stderr = launcher.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            launcher.send_signal(signal.SIGTERM)
            try:
                stdout, stderr = launcher.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)
                stdout, stderr = launcher.communicate()
            kill_stray_workers(target[target.index("--out") + 1])
            pytest.fail(f"torchrun still running after {timeout:.0f} s (killed)\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
    wall = time.perf_counter() - start
    return subprocess.CompletedProcess(cmd, launcher.returncode, stdout, stderr), wall


def train_args(out, kimg, *options: str, overrides=()) -> list[str]:
    """Options, then the tiny-model overrides, then `overrides`."""
    return ["--config", "demo", "--device", "cpu", "--out", str(out), "--kimg", str(kimg), *options, *TINY, *overrides]


def output(proc) -> str:
    return f"--- exit code {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def test_two_process_run_writes_one_run_directory_and_resumes_on_one_process(tmp_path, env):
    out = tmp_path / "run"
    proc, _ = torchrun(2, ["-m", "alae.train", *train_args(out, 0.1)], env)
    assert proc.returncode == 0, output(proc)

    # One run directory, written by rank 0 alone.
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml", "log.txt", "run.lock", "samples",
                                                      "stats.jsonl", "tb"]
    log = (out / "log.txt").read_text()
    headers = [line for line in log.splitlines() if " run " in line and "world size" in line]
    assert len(headers) == 1 and "world size 2 on cpu" in headers[0], log
    assert log.count("done: ") == 1, log
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 1  # one SummaryWriter, not one per rank
    assert list((out / "samples").glob("samples-*.png")) and list((out / "samples").glob("reconstructions-*.png"))
    assert proc.stdout.count("done: ") == 1, output(proc)  # only rank 0 logs to the console
    # Ticks of 16 images: one row each (rank 0's alone), the last one when training stops at 104.
    rows = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert [r["images_seen"] for r in rows] == [16, 32, 48, 64, 80, 96, 104], rows
    assert len(re.findall(r"\d tick \d+  kimg ", log)) == len(rows)

    # 0.1 kimg = 100 images, rounded up to whole global batches of 8: 13 steps, 104 images.
    first = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert first["progress"]["images_seen"] == 104 and first["progress"]["step"] == 13
    assert first["progress"]["optimizer_lod"] == 1  # the run crossed the lod change on 2 ranks

    # One process picks it up (config from the run directory) and continues the image count.
    cmd = [sys.executable, "-m", "alae.train", "--out", str(out), "--resume", "auto", "--kimg", "0.2", "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    assert proc.returncode == 0, output(proc)
    log = (out / "log.txt").read_text()
    assert re.search(r"resumed from \S*latest\.pt at 0\.1 kimg \(step 13\)", log), log
    assert "world size 1 on cpu" in log
    final = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert final["progress"]["images_seen"] == 200 and final["progress"]["step"] == 25


# Runs alae.train.main, but rank 1 (on the restart attempts listed in ALAE_TEST_DIE_ON_ATTEMPTS)
# exits hard at the start of its ALAE_TEST_DIE_AT_STEP-th training step, as a crash or an OOM kill would.
DYING_RANK = textwrap.dedent("""
    import os, sys, time
    import alae.train as train
    from alae.training.objectives import alae as objective

    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if os.environ.get("RANK") == "1" and attempt != "0":
        time.sleep(float(os.environ.get("ALAE_TEST_RESTART_LATE_S", "0")))  # start late after a restart
    if os.environ.get("RANK") == "1" and attempt in os.environ["ALAE_TEST_DIE_ON_ATTEMPTS"].split(","):
        real_step, calls = objective.train_step, [0]

        def dying_step(*args, **kwargs):
            calls[0] += 1
            if calls[0] >= int(os.environ["ALAE_TEST_DIE_AT_STEP"]):
                print(f"rank 1 dies at step {calls[0]} (attempt {attempt})", file=sys.stderr, flush=True)
                os._exit(13)
            return real_step(*args, **kwargs)

        objective.train_step = dying_step
    sys.exit(train.main(sys.argv[1:]))
""")


def test_a_dead_rank_brings_the_job_down_without_hanging(tmp_path, env):
    helper = tmp_path / "dying_rank.py"
    helper.write_text(DYING_RANK)
    env = dict(env, ALAE_TEST_DIE_ON_ATTEMPTS="0", ALAE_TEST_DIE_AT_STEP="4")
    # 1 kimg = 125 steps: the job would run on well after rank 1 dies at step 4.
    proc, wall = torchrun(2, [str(helper), *train_args(tmp_path / "run", 1.0)], env)
    assert proc.returncode != 0, output(proc)
    assert "rank 1 dies at step 4" in proc.stderr, output(proc)
    assert re.search(r"exitcode\s*:\s*13", proc.stderr), output(proc)  # torchrun reports the dead rank
    assert wall < 60, f"the job took {wall:.0f} s to end after a rank died\n{output(proc)}"


@pytest.mark.parametrize("store", [
    "per-attempt",  # TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1: rank 0 serves a fresh store each attempt
    "shared",  # torchrun's default: needs alae.distributed.restart_safe_store
])
def test_max_restarts_with_resume_auto_continues_from_the_last_checkpoint(tmp_path, env, store):
    helper = tmp_path / "dying_rank.py"
    helper.write_text(DYING_RANK)
    out = tmp_path / "run"
    env = dict(env, ALAE_TEST_DIE_ON_ATTEMPTS="0", ALAE_TEST_DIE_AT_STEP="6", ALAE_TEST_RESTART_LATE_S="3")
    if store == "per-attempt":
        env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] = "1"
    else:
        env.pop("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", None)
    # Checkpoints every 2 steps (16 images): rank 1 dies in step 6, after the checkpoint at step 4;
    # on the restart it joins 3 s late, as a slow rank would.
    args = train_args(out, 0.064, "--resume", "auto", overrides=["log.kimg_per_checkpoint=0.016"])
    proc, _ = torchrun(2, [str(helper), *args], env, "--max-restarts=1", timeout=90)
    assert proc.returncode == 0, output(proc)
    assert "rank 1 dies at step 6 (attempt 0)" in proc.stderr, output(proc)
    log = (out / "log.txt").read_text()
    assert len(re.findall(r"resumed from \S*latest\.pt at 0\.0 kimg \(step 4\)", log)) == 1, log
    final = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert final["progress"]["images_seen"] == 64 and final["progress"]["step"] == 8


def test_a_world_size_that_does_not_divide_the_batch_is_a_one_line_error(tmp_path, env):
    logs = tmp_path / "logs"
    # --redirects 3: each rank's stdout and stderr go to their own files under --log-dir.
    proc, _ = torchrun(3, ["-m", "alae.train", *train_args(tmp_path / "run", 0.016)], env,
                       f"--log-dir={logs}", "--redirects=3")
    assert proc.returncode != 0, output(proc)
    stderrs = sorted(logs.rglob("stderr.log"))
    assert len(stderrs) == 3, (stderrs, output(proc))
    for path in stderrs:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        assert len(lines) == 1, (path, lines)
        assert lines[0].startswith("alae-train: error: train.batch_per_lod[0] = 8 is not divisible by the world size 3")
    assert not (tmp_path / "run" / "checkpoints").exists()
