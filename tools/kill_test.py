"""Kill a training with SIGKILL at random moments, resume it each time, and check that it ends bit
for bit as the uninterrupted run: `python -m alae.tools.kill_test --kills 20 --out /tmp/kill-test`.

    python -m alae.tools.kill_test --out /tmp/kill-test                          # mnist-vae, 20 kills
    python -m alae.tools.kill_test --config demo --kimg 0.5 --kills 5 --out K model.channels=[16,8]

First `alae-train --config CONFIG --kimg KIMG --out OUT/straight OVERRIDES` runs uninterrupted (its
stats.jsonl gives the start-up and training times). Then `alae-train ... --out OUT/killed --resume
auto` is launched again and again, each launch killed with SIGKILL (no chance to clean up: a
kill during a checkpoint write leaves its temporary), until --kills kills; the last launch runs
to the end. Every 4th kill falls at a uniform moment of the start-up (imports, the lock,
choosing and reading the checkpoint), the others in training: once the launch's stats.jsonl
reaches a step drawn uniformly between the resumed step and 2 · steps left / kills left further
(but two ticks before the end), at a uniform moment of the tick that follows (the tick's
records, checkpoint writes and steps alike), so that the run reaches its end only after the
last kill whatever the machine's speed.
After each kill the newest complete checkpoint is read from the folder (every `*.pt`, not its
`.tmp`), and the next launch must not be refused (the dead run's lock is gone), must say it
resumed from exactly that checkpoint (or start afresh when there is none) and must end or be
killed without an error. At the end every tensor of the final checkpoint (networks, EMA
networks, optimizer states) and the schedule position must equal the uninterrupted run's.

Each launch's output goes to OUT/launches.log; one line per kill is printed, then the result.
Exit status 0 when the final states are equal and every check held, 1 otherwise. The children
run with this process's environment (set OMP_NUM_THREADS for both runs alike, or neither).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from alae.cli import ToolError, prepare_output_dir, run_tool

PROG = "kill_test"
# A small mnist-vae run: 125 steps of 128 digits, a checkpoint (about 9 MB) every 2 steps.
DEFAULT_OVERRIDES = ["model.mlp_width=256", "log.kimg_per_tick=0.256", "log.kimg_per_checkpoint=0.256",
                     "log.kimg_per_sample=1000", "log.grid_size=4"]
RESUMED = re.compile(r"resumed from (\S+) at [\d.]+ kimg \(step (\d+)\)")
TICK = re.compile(r"\d tick \d+  kimg ")
STARTED = re.compile(r"world size \d+ on ")  # in the line alae.training.loop.train logs as it starts
STARTUP_EVERY = 4  # every 4th kill falls in a launch's start-up (imports, lock, resume); the rest in training


@dataclass
class KillTestReport:
    """What a kill test saw: kills (seconds after launch, 'start-up' or 'training', step of the
    newest complete checkpoint after it (-1: none), temporaries it left), the launches, the
    problems found (empty: it passed), the wall time, and the number of tensors compared."""

    kills: list[tuple[float, str, int, int]] = field(default_factory=list)
    launches: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    tensors: int = 0


def train_command(config: str, kimg: float, out: Path, overrides: list[str], resume: bool) -> list[str]:
    return [sys.executable, "-m", "alae.train", "--config", config, "--kimg", str(kimg), "--out", str(out),
            "--device", "cpu", *(["--resume", "auto"] if resume else []), *overrides]


def newest_complete_step(run_dir: Path) -> int | None:
    """The step of the furthest complete checkpoint in run_dir/checkpoints (None: none), read here
    without alae's resume logic: every `*.pt` that loads."""
    steps = []
    for path in (run_dir / "checkpoints").glob("*.pt"):
        try:
            steps.append(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["progress"]["step"])
        except Exception:  # a file that does not load is not complete
            continue
    return max(steps, default=None)


def timing_of(run_dir: Path, launched: float) -> tuple[float, float]:
    """(start-up seconds, training seconds) of a finished run, from its stats.jsonl timestamps."""
    rows = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    start = rows[0]["timestamp"] - rows[0]["images_seen"] / rows[0]["img_per_s"]
    return max(start - launched, 0.0), rows[-1]["timestamp"] - start


def state_differences(a: dict, b: dict, prefix: str = "") -> tuple[list[str], int]:
    """(the names under which two nests of dicts, lists, tensors and plain values differ, the
    number of tensors compared), comparing tensors with torch.equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{prefix or 'top'}: keys {sorted(map(str, a.keys() ^ b.keys()))} differ"], 0
        pairs = [(a[k], b[k], f"{prefix}.{k}" if prefix else str(k)) for k in a]
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        pairs = [(x, y, f"{prefix}[{i}]") for i, (x, y) in enumerate(zip(a, b))]
    elif isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        same = a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
        return ([] if same else [prefix]), 1
    else:
        return ([] if a == b else [prefix]), 0
    differ, count = [], 0
    for x, y, name in pairs:
        d, n = state_differences(x, y, name)
        differ += d
        count += n
    return differ, count


def kill_test(out: Path, config: str, kimg: float, kills: int, seed: int, overrides: list[str],
              say=print) -> KillTestReport:
    """Run the test (module docstring) in the folder `out`; `say` gets one line per event."""
    report, rng, begin = KillTestReport(), random.Random(seed), time.perf_counter()
    launches = (out / "launches.log").open("a")

    def launch(run_dir: Path, resume: bool) -> tuple[subprocess.Popen, float]:
        report.launches += 1
        launches.write(f"--- launch {report.launches}\n")
        launches.flush()
        cmd = train_command(config, kimg, run_dir, overrides, resume)
        return subprocess.Popen(cmd, stdout=launches, stderr=subprocess.STDOUT), time.time()

    straight, killed = out / "straight", out / "killed"
    proc, launched = launch(straight, resume=False)
    if proc.wait() != 0:
        raise ToolError(f"the uninterrupted run failed (exit {proc.returncode}); see {out / 'launches.log'}")
    startup, training = timing_of(straight, launched)
    steps, ticks = newest_complete_step(straight), len((straight / "stats.jsonl").read_text().splitlines())
    say(f"uninterrupted: {startup:.1f} s start-up, {training:.1f} s training, {steps} steps in {ticks} ticks")
    while True:
        expected = newest_complete_step(killed) if killed.exists() else None
        log_size = (killed / "log.txt").stat().st_size if (killed / "log.txt").exists() else 0
        stats_size = (killed / "stats.jsonl").stat().st_size if (killed / "stats.jsonl").exists() else 0
        left = kills - len(report.kills)
        proc, launched = launch(killed, resume=True)
        phase = "start-up" if (len(report.kills) + 1) % STARTUP_EVERY == 0 else "training"
        if not left:
            proc.wait()
        elif phase == "start-up":
            wait_or_kill(proc, rng.uniform(0, startup))
        else:
            began = wait_for_training(proc, killed / "log.txt", log_size)
            if began is not None:
                startup = min(startup, began - launched)
                done = expected or 0
                target = min(done + rng.uniform(0, 2 * (steps - done) / left), steps - 2 * steps / ticks)
                if wait_for_step(proc, killed / "stats.jsonl", stats_size, target):
                    wait_or_kill(proc, rng.uniform(0, training / ticks))
        moment = time.time() - launched
        report.problems += launch_problems(killed, log_size, expected, proc.returncode, report.launches)
        if proc.returncode == 0:
            break
        if proc.returncode == -9:
            temporaries = len(list(killed.rglob("*.tmp")))
            step = newest_complete_step(killed)
            report.kills.append((moment, phase, -1 if step is None else step, temporaries))
            during = f"; {temporaries} temporary left by a write it cut short" if temporaries else ""
            say(f"kill {len(report.kills)}/{kills} in {phase}, {moment:.2f} s after launch: newest complete "
                f"checkpoint at step {'none' if step is None else step}{during}")
        if report.problems:
            break
    if not report.problems:
        final = torch.load(killed / "checkpoints" / "latest.pt", map_location="cpu", weights_only=True)
        reference = torch.load(straight / "checkpoints" / "latest.pt", map_location="cpu", weights_only=True)
        parts = ("model", "ema", "optimizers", "progress")
        differ, report.tensors = state_differences({k: final[k] for k in parts}, {k: reference[k] for k in parts})
        report.problems += [f"differs from the uninterrupted run: {name}" for name in differ[:10]]
    report.seconds = time.perf_counter() - begin
    launches.close()
    return report


def wait_or_kill(proc: subprocess.Popen, seconds: float) -> None:
    """Let `proc` run for `seconds`, then SIGKILL it (unless it has ended by then)."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_step(proc: subprocess.Popen, stats: Path, stats_size: int, step: float) -> bool:
    """Wait until `proc` writes a stats.jsonl row (after byte `stats_size`) at `step` or later;
    False when it ends first."""
    while proc.poll() is None:
        added = stats.read_bytes()[stats_size:].decode(errors="replace") if stats.exists() else ""
        if any(json.loads(line)["step"] >= step for line in added.splitlines() if line.endswith("}")):
            return True
        time.sleep(0.01)
    return False


def wait_for_training(proc: subprocess.Popen, log: Path, log_size: int) -> float | None:
    """The time at which `proc` logged the start of its training loop (None: it ended first)."""
    while proc.poll() is None:
        if log.exists() and STARTED.search(log.read_bytes()[log_size:].decode(errors="replace")):
            return time.time()
        time.sleep(0.01)
    return None


def launch_problems(run_dir: Path, log_size: int, expected: int | None, status: int, number: int) -> list[str]:
    """What went wrong in one launch: an exit other than success or the kill, a resume from another
    checkpoint than the newest complete one (read from the lines it added to log.txt)."""
    problems = [] if status in (0, -9) else [f"launch {number} exited with {status} (see launches.log)"]
    log = run_dir / "log.txt"
    added = log.read_bytes()[log_size:].decode(errors="replace") if log.exists() else ""
    resumed = RESUMED.search(added)
    if resumed and int(resumed.group(2)) != expected:
        problems.append(f"launch {number} resumed from step {resumed.group(2)} ({resumed.group(1)}), the newest "
                        f"complete checkpoint is at step {expected}")
    if expected is not None and not resumed and TICK.search(added):  # it trained without resuming
        problems.append(f"launch {number} started afresh beside a complete checkpoint at step {expected}")
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="a new or empty folder for the two runs and launches.log")
    p.add_argument("--config", default="mnist-vae")
    p.add_argument("--kimg", type=float, default=16.0, help="length of the run (thousands of images)")
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help=f"alae-train overrides (default with mnist-vae: {' '.join(DEFAULT_OVERRIDES)})")
    args = p.parse_intermixed_args(argv)

    def body() -> int:
        out = prepare_output_dir(args.out, False, PROG, argv)
        overrides = args.overrides or (DEFAULT_OVERRIDES if args.config == "mnist-vae" else [])
        report = kill_test(out, args.config, args.kimg, args.kills, args.seed, overrides,
                           say=lambda line: print(f"{PROG}: {line}", flush=True))
        for problem in report.problems:
            print(f"{PROG}: problem: {problem}", file=sys.stderr)
        verdict = (f"the final networks, EMA networks and optimizer states ({report.tensors} tensors) and the "
                   f"schedule position equal the uninterrupted run's bit for bit" if not report.problems else
                   f"{len(report.problems)} problems")
        print(f"{PROG}: {len(report.kills)} kills, {report.launches - 1} launches of the killed run, "
              f"{report.seconds:.0f} s: {verdict}")
        return 0 if not report.problems else 1

    return run_tool(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
