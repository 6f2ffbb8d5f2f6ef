"""Faults of a run's process (alae.training.stop_signal): SIGTERM and Ctrl-C stop after the step
with a checkpoint and a resume that ends as the uninterrupted run, a second signal stops at
once; under torchrun a signal to one rank stops all ranks at the same step, and a rank killed
with SIGKILL under `torchrun --max-restarts 1 ... --resume auto` ends as the uninterrupted
two-rank run, bit for bit."""
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from alae.model_files.checkpoint import load_checkpoint
from fault_runs import assert_same_state, demo_cache, finish, run, start, wait_for_ticks  # noqa: F401
from test_torchrun import env, free_port, output, torchrun, train_args  # noqa: F401  (env: a pytest fixture)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_finishes_the_step_saves_says_how_to_resume_and_the_resume_is_exact(tmp_path, signum, status):
    out = tmp_path / "stopped"
    proc = start(out, 1000)  # trains until stopped
    wait_for_ticks(proc, out, 1)
    proc.send_signal(signum)
    code, _, err = finish(proc)
    assert code == status, err
    assert "Traceback" not in err
    name = signal.Signals(signum).name
    assert f"alae-train: {name} received: stopping after this step and writing a checkpoint" in err
    stopped = load_checkpoint(out / "checkpoints" / "latest.pt")
    step, images = stopped["progress"]["step"], stopped["progress"]["images_seen"]
    message = (f"stopped by {name} after step {step} (kimg {images / 1000:.3f}); the checkpoint is "
               f"{out}/checkpoints/latest.pt; continue with: alae-train --out {out} --resume auto")
    assert f"alae-train: {message}\n" in err and message in (out / "log.txt").read_text()
    assert step >= 2 and images == 8 * step
    rows = [line for line in (out / "stats.jsonl").read_text().splitlines()]
    assert f'"images_seen": {images},' in rows[-1]  # the partial tick of the stop is recorded
    assert not list(out.rglob("*.tmp"))
    kimg = (images + 16) / 1000  # two steps more
    assert run(out, kimg, resume="auto") == 0
    assert run(tmp_path / "straight", kimg) == 0
    assert_same_state(load_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt"),
                      load_checkpoint(out / "checkpoints" / "latest.pt"))


def test_a_second_signal_stops_at_once_without_a_traceback_or_a_temporary(tmp_path):
    proc = start(tmp_path, 1000)
    wait_for_ticks(proc, tmp_path, 1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc)
    assert code == 130 and "Traceback" not in err, err
    assert "alae-train: interrupted" in err or "alae-train: stopped by SIGINT" in err  # the 2nd may come late
    assert not list(tmp_path.rglob("*.tmp"))
    if (tmp_path / "checkpoints" / "latest.pt").exists():
        load_checkpoint(tmp_path / "checkpoints" / "latest.pt")


def worker_pid(marker: str, rank: int) -> int:
    """The pid of the torchrun worker of `rank` whose command line holds `marker`."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if marker.encode() in cmdline and f"RANK={rank}".encode() in environ and b"-m\0alae.train" in cmdline:
            return int(pid)
    raise AssertionError(f"no rank {rank} running with {marker}")


@pytest.mark.slow
def test_under_torchrun_a_sigterm_to_one_rank_stops_every_rank_after_the_same_step(tmp_path, env):
    out, logs = tmp_path / "run", tmp_path / "logs"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1", "--rdzv-backend=c10d",
           f"--rdzv-endpoint=127.0.0.1:{free_port()}", f"--log-dir={logs}", "--redirects=3", "-m", "alae.train",
           *train_args(out, 1000)]
    launcher = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    try:
        wait_for_ticks(launcher, out, 1)
        os.kill(worker_pid(str(out), 1), signal.SIGTERM)  # rank 1 alone; rank 0 learns it from the agreement
        code, _, launcher_err = finish(launcher)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    log = (out / "log.txt").read_text()
    found = re.search(r"stopped by SIGTERM after step (\d+)", log)
    assert found, log
    step = int(found.group(1))
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["progress"]["step"] == step
    assert len(re.findall(r"exitcode\s*:\s*143", launcher_err)) >= 1, launcher_err  # not a crash or a timeout
    stderrs = sorted(logs.rglob("stderr.log"))
    assert len(stderrs) == 2
    for path in stderrs:
        text = path.read_text()
        assert "Traceback" not in text and "stopped by SIGTERM" in text, (path, text)


# alae.train.main, but rank 1 kills itself with SIGKILL at the start of its ALAE_TEST_DIE_AT_STEP-th
# step on the first attempt: no exception, no cleanup, as the OOM killer or a lost node would.
KILLED_RANK = textwrap.dedent("""
    import os, signal, sys
    import alae.train as train
    from alae.training.objectives import alae as objective

    if os.environ.get("RANK") == "1" and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
        real_step, calls = objective.train_step, [0]

        def killed_step(*args, **kwargs):
            calls[0] += 1
            if calls[0] >= int(os.environ["ALAE_TEST_DIE_AT_STEP"]):
                print(f"rank 1 killed at step {calls[0]}", file=sys.stderr, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            return real_step(*args, **kwargs)

        objective.train_step = killed_step
    sys.exit(train.main(sys.argv[1:]))
""")


@pytest.mark.slow
def test_the_elastic_recipe_resumes_a_killed_rank_and_ends_as_the_uninterrupted_run(tmp_path, env):
    helper = tmp_path / "killed_rank.py"
    helper.write_text(KILLED_RANK)
    # Checkpoints every 2 steps (16 images); rank 1 is killed in step 7, after the checkpoint of step 6.
    overrides = ["log.kimg_per_checkpoint=0.016"]
    straight, _ = torchrun(2, ["-m", "alae.train", *train_args(tmp_path / "straight", 0.08, overrides=overrides)], env)
    assert straight.returncode == 0, output(straight)
    out = tmp_path / "elastic"
    args = train_args(out, 0.08, "--resume", "auto", overrides=overrides)
    proc, _ = torchrun(2, [str(helper), *args], dict(env, ALAE_TEST_DIE_AT_STEP="7"), "--max-restarts=1")
    assert proc.returncode == 0, output(proc)
    assert "rank 1 killed at step 7" in proc.stderr, output(proc)
    log = (out / "log.txt").read_text()
    assert len(re.findall(r"resumed from \S*latest\.pt at 0\.0 kimg \(step 6\)", log)) == 1, log
    assert_same_state(load_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt"),
                      load_checkpoint(out / "checkpoints" / "latest.pt"))
