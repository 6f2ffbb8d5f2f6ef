"""Part 6: torchrun over several processes for a few steps against one process with the same
global batch: the parameters must agree within float tolerance.

Both runs are `alae-train --config demo` on the embedded faces (a cache in the run's folder),
the second under `python -m torch.distributed.run --standalone --nproc-per-node N`. The single
process runs the same micro-batches (`train.batch_gpu` = global batch / N), so the arithmetic
differs only in the order of the gradient all-reduce: on the CPU (gloo, 2 ranks) the two runs
are bitwise equal. Without that, float32 summation in another order alone moves G's output by
1.3% after 4 steps (demo config, CPU), because Adam with beta1 = 0 turns rounding in near-zero
gradients into ±lr steps (tests/test_distributed.py compares in float64 for that reason). Their
`checkpoints/latest.pt` are compared per tensor of the training networks and the EMA copy:
‖a − b‖ ≤ RTOL·‖b‖ + ATOL·√numel (the rule of tests/test_distributed.py, looser for GPU
reductions in another order); the figure is the worst tensor's ‖a − b‖ over its allowance.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alae.acceptance.report import FAILED, PASSED, Part
from alae.model_files.checkpoint import load_checkpoint

RTOL, ATOL = 1e-4, 1e-5
GLOBAL_BATCH = 16  # the demo config's batch at every lod


def processes_for(gpus: int) -> int:
    """The most processes ≤ gpus that split the global batch evenly."""
    return max(n for n in range(1, gpus + 1) if GLOBAL_BATCH % n == 0)


def train_command(out: Path, device: str, kimg: float, nproc: int, micro_batch: int) -> list[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] \
        if nproc > 1 else [sys.executable]
    return [*launcher, "-m", "alae.train", "--config", "demo", "--out", str(out), "--kimg", str(kimg),
            "--device", device, f"train.batch_gpu={micro_batch}", "data.workers=0", "log.kimg_per_sample=1000",
            "log.kimg_per_checkpoint=1000"]


def worst_ratio(a: dict, b: dict) -> tuple[float, str]:
    """(max over tensors of ‖a − b‖ / (RTOL·‖b‖ + ATOL·√numel), that tensor's name)."""
    worst, where = 0.0, ""
    for section in ("model", "ema"):
        for name, reference in b[section].items():
            got, reference = a[section][name].double(), reference.double()
            ratio = ((got - reference).norm() / (RTOL * reference.norm() + ATOL * reference.numel() ** 0.5)).item()
            if ratio > worst:
                worst, where = ratio, f"{section}.{name}"
    return worst, where


def multi_gpu_part(out: Path, device: str, processes: int, timeout_s: float, kimg: float = 0.064,
                   number: int = 6) -> Part:
    """Part 6 with `processes` ranks on `device` ('cuda': one GPU each; 'cpu': gloo)."""
    part = Part(number, "torchrun equals one process", columns=["processes", "steps", "worst tensor",
                                                                "‖a − b‖ / allowance", "ok"])
    env = dict(os.environ, ALAE_CACHE=str(out / "cache"), OMP_NUM_THREADS="1")
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    runs = {}
    for nproc in (1, processes):
        run_dir = out / f"{nproc}-process"
        try:
            done = subprocess.run(train_command(run_dir, device, kimg, nproc, GLOBAL_BATCH // processes), env=env, capture_output=True,
                                  text=True, timeout=timeout_s / 2)
        except subprocess.TimeoutExpired:
            part.status, part.summary = FAILED, f"the {nproc}-process run did not finish in {timeout_s / 2:.0f} s"
            return part
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            part.status, part.summary = FAILED, f"the {nproc}-process run failed: {tail}"
            return part
        runs[nproc] = load_checkpoint(run_dir)
    ratio, where = worst_ratio(runs[processes], runs[1])
    steps = runs[1]["progress"]["step"]
    part.rows.append([processes, steps, where, ratio, ratio <= 1])
    part.status = PASSED if ratio <= 1 else FAILED
    part.summary = (f"{processes} processes vs 1 after {steps} steps: worst {where} at {ratio:.2g} of the allowance "
                    f"(RTOL {RTOL:g}, ATOL {ATOL:g})")
    return part
