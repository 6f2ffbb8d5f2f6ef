"""The acceptance run of `alae-doctor --acceptance`, in order, within one time budget:

1. the environment report (alae-doctor's items);                 no GPU needed
2. the kernels' build and self-test, then `pytest -m cuda`;      GPU
3. F, G, E, D through the CUDA ops vs the reference ops (ffhq);  GPU, part 2 passed
4. the training step per config and lod: speed, memory;          GPU (CUDA-vs-ref only if part 2 passed)
5. host synchronisations per training step;                      GPU
6. torchrun over every GPU equals one GPU;                       two or more GPUs
7. the loader at 1024 px against part 4's step rate.             no GPU needed

A part whose prerequisite is missing or failed is listed as skipped with the reason, as is one
that starts with less than MIN_PART_S of the budget left. A part that raises is a failed part
(the error's first line as its summary, the traceback in its notes). The caller (tools/doctor.py)
supplies parts 1 and 2's doctor items and alae-train's main, so this package imports no command
line.
"""
from __future__ import annotations

import traceback
from pathlib import Path
from typing import Callable

import torch

from alae.acceptance.cuda_tests import run_cuda_tests
from alae.acceptance.host_syncs import host_syncs_part
from alae.acceptance.loader_speed import loader_part
from alae.acceptance.multi_gpu import multi_gpu_part, processes_for
from alae.acceptance.network_ops import network_ops_part
from alae.acceptance.report import FAILED, PASSED, Budget, Part, machine, summary_lines, write_reports
from alae.acceptance.step_speed import step_speed_part
from alae.config import load_config
from alae.training.objectives import alae as alae_objective

DEFAULT_CONFIGS = ("demo", "celeba-hq256", "ffhq")
MIN_PART_S = 10.0  # a part needs at least this much of the budget to start
CUDA_TESTS_SHARE = 0.3  # fractions of the time left that a part may use
STEP_SPEED_SHARE = 0.6
MULTI_GPU_SHARE = 0.6
LOADER_PX = 1024
HOST_SYNC_ARGS = ["--config", "demo", "--kimg", "0.2", "data.workers=0", "log.kimg_per_tick=0.05",
                  "log.kimg_per_sample=1000", "log.kimg_per_checkpoint=1000"]

Item = tuple[str, str, str]  # (status: ok / info / missing / FAIL, name, text), as alae-doctor reports one


def items_part(number: int, title: str, items: list[Item]) -> Part:
    failed = [name for status, name, _ in items if status == "FAIL"]
    return Part(number, title, status=FAILED if failed else PASSED,
                summary=f"failing: {', '.join(failed)}" if failed else f"{len(items)} items, none failing",
                columns=["status", "item", "report"], rows=[list(item) for item in items])


def _guarded(number: int, title: str, make: Callable[[], Part]) -> Part:
    try:
        return make()
    except Exception as exc:  # one part's crash is that part's failure; the others still run
        text = str(exc).strip().splitlines()
        return Part(number, title, status=FAILED, summary=f"raised {type(exc).__name__}: {text[0] if text else ''}",
                    notes=traceback.format_exc().splitlines())


def acceptance(out: Path, budget_s: float, environment: Callable[[], list[Item]],
               kernels: Callable[[], list[Item]], train_main: Callable[[list[str]], int],
               configs: tuple[str, ...] = DEFAULT_CONFIGS, say: Callable[[str], None] = print) -> int:
    """Run the parts, write out/report.json and out/report.md, print the summary; 1 if a part failed."""
    out = Path(out)
    budget = Budget(budget_s)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = torch.device("cuda", 0) if gpus else None
    if not gpus:
        say("alae-doctor: no CUDA GPU: running the parts that need none (1 and 7); the others are listed as skipped")
    parts: list[Part] = []
    rates: dict = {}

    def run_part(number: int, title: str, make: Callable[[], Part], needs: str | None = None) -> Part:
        started = budget.elapsed()
        if needs:
            part = Part(number, title).skip(needs)
        elif budget.left() < MIN_PART_S:
            part = Part(number, title).skip(f"budget spent ({budget.total:.0f} s): rerun with a larger --budget-s")
        else:
            part = _guarded(number, title, make)
        part.seconds = budget.elapsed() - started
        parts.append(part)
        say(summary_lines([part])[0])
        return part

    def kernels_part() -> Part:
        part = items_part(2, "kernels: build, self-test, cuda tests", kernels())
        ok, text = run_cuda_tests(budget.share(CUDA_TESTS_SHARE))
        part.rows.append(["ok" if ok else "--" if ok is None else "FAIL", "pytest -m cuda", text])
        if ok is False:
            part.status, part.summary = FAILED, f"{part.summary}; {text}"
        return part

    def steps_part() -> Part:
        impls = ("cuda", "ref") if parts[1].status == PASSED else ("ref",)
        part, measured = step_speed_part(list(configs), device, budget.share(STEP_SPEED_SHARE), world_size=gpus,
                                         impls=impls)
        rates.update(measured)
        return part

    no_gpu = None if gpus else "no CUDA GPU"
    run_part(1, "environment", lambda: items_part(1, "environment", environment()))
    run_part(2, "kernels: build, self-test, cuda tests", kernels_part, needs=no_gpu)
    kernels_failed = None if parts[1].status == PASSED else no_gpu or "the kernels failed (part 2)"
    run_part(3, "networks through the cuda ops vs ref",
             lambda: network_ops_part(load_config("ffhq"), device), needs=kernels_failed)
    run_part(4, "training step speed and memory", steps_part, needs=no_gpu)
    run_part(5, "host synchronisations per training step",
             lambda: host_syncs_part(train_main, [*HOST_SYNC_ARGS, "--out", str(out / "host-syncs"), "--device", "cuda"],
                                     alae_objective, on_cuda=True), needs=no_gpu)
    run_part(6, "torchrun equals one process",
             lambda: multi_gpu_part(out / "multi-gpu", "cuda", processes_for(gpus), budget.share(MULTI_GPU_SHARE)),
             needs=no_gpu or (None if gpus > 1 else "one GPU: nothing to compare"))
    run_part(7, f"data loader at {LOADER_PX} px",
             lambda: loader_part(out / "loader", rates.get(("ffhq", LOADER_PX)), resolution=LOADER_PX,
                                 seconds=min(5.0, budget.left() / 6)))
    exit_status = int(any(p.status == FAILED for p in parts))
    json_path, md_path = write_reports(out, parts, machine(), budget, exit_status)
    say(f"alae-doctor: {'a check failed' if exit_status else 'no check failed'} in {budget.elapsed():.0f} s of "
        f"{budget.total:.0f} s; report: {md_path} and {json_path}")
    return exit_status
