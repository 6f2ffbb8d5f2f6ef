"""Part 5: a short training run with `torch.cuda.set_sync_debug_mode("warn")`, counting the host
synchronisations inside each training step (expected: none; the loop reads its statistics on the
host once per tick, between steps).

The objective's `train_step` is wrapped for the run: the sync warnings raised while it runs are
counted per step, the others (tick ends: statistics, grids, checkpoints) apart. The places that
synchronised (file:line of the Python frame that caused it) are listed.
"""
from __future__ import annotations

import collections
import contextlib
import warnings
from pathlib import Path
from typing import Callable

import torch

from alae.acceptance.report import FAILED, PASSED, Part

SYNC_MESSAGE = "called a synchronizing CUDA operation"  # the text of torch's sync debug warning


@contextlib.contextmanager
def sync_debug_warnings(enabled: bool):
    """Inside: torch warns at every host synchronisation (when `enabled`, i.e. on CUDA)."""
    if enabled:
        torch.cuda.set_sync_debug_mode("warn")
    try:
        yield
    finally:
        if enabled:
            torch.cuda.set_sync_debug_mode("default")


def count_syncs(run: Callable[[], object], objective_module) -> tuple[list[int], int, collections.Counter]:
    """Run `run()` with `objective_module.train_step` wrapped: (syncs in each step, syncs outside
    steps, Counter of the places inside steps)."""
    per_step, places = [], collections.Counter()
    original = objective_module.train_step
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def counted(*args, **kwargs):
            before = len(caught)
            try:
                return original(*args, **kwargs)
            finally:
                inside = [w for w in caught[before:] if SYNC_MESSAGE in str(w.message)]
                per_step.append(len(inside))
                places.update(f"{Path(w.filename).name}:{w.lineno}" for w in inside)

        objective_module.train_step = counted
        try:
            run()
        finally:
            objective_module.train_step = original
    total = sum(SYNC_MESSAGE in str(w.message) for w in caught)
    return per_step, total - sum(per_step), places


def host_syncs_part(train_main: Callable[[list[str]], int], argv: list[str], objective_module, on_cuda: bool,
                    number: int = 5) -> Part:
    """Part 5 for `train_main(argv)` (alae-train's main and its arguments)."""
    part = Part(number, "host synchronisations per training step", columns=["steps", "syncs in steps",
                                                                              "most in one step", "syncs between steps"])
    status = []
    with sync_debug_warnings(on_cuda):
        per_step, outside, places = count_syncs(lambda: status.append(train_main(argv)), objective_module)
    if status != [0]:
        part.status, part.summary = FAILED, f"the training run failed (exit status {status})"
        return part
    part.rows.append([len(per_step), sum(per_step), max(per_step, default=0), outside])
    part.notes += [f"{count} x {place}" for place, count in places.most_common(10)]
    part.status = PASSED if per_step and sum(per_step) == 0 else FAILED
    part.summary = (f"{sum(per_step)} syncs in {len(per_step)} steps (expected none), {outside} between steps"
                    if per_step else "no training step ran")
    return part
