"""A graceful stop on SIGINT or SIGTERM: finish the step, write a checkpoint, exit.

    stop = StopSignal(ctx)
    stop.install()
    try:
        while ...:
            ... one training step ...
            if stop.agreed():          # after the step: the signal number, or 0 to go on
                write the checkpoint; raise stop.interrupted(...)
    finally:
        stop.uninstall()

The first SIGINT (Ctrl-C) or SIGTERM (what cluster schedulers and torchrun send before they
kill) only sets a flag: the step in flight finishes, the loop writes a checkpoint and the
command exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM, as a shell
reports a process killed by that signal). A second signal stops at once: KeyboardInterrupt
(exit 130), and a checkpoint write it cuts short leaves the previous one and no temporary.

Under torchrun every rank must stop after the same step, or the ranks that go on would wait
for the others at their next collective. With world size > 1 the ranks agree once per step
with a MAX all-reduce of one integer on the CPU (gloo; beside NCCL a gloo group of its own,
so the GPU is never synchronised with the host for it); with world size 1 a step costs one
attribute read. Processes forked while the handlers are installed (data loader workers)
ignore both signals, so that a Ctrl-C sent to the terminal's process group leaves them to the
main process instead of killing them under the running step.
"""
from __future__ import annotations

import os
import signal
import threading

import torch
import torch.distributed as dist

from alae.distributed import Context

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """The run stopped on a signal after writing its checkpoint; the command exits 128 + signum."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


class StopSignal:
    """The stop flag of one training loop, and the handlers that set it (see the module docstring)."""

    _active: "StopSignal | None" = None

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.signum = 0  # the first signal received by this process (0: none)
        self._previous: dict[int, object] = {}
        self._group = None
        if ctx.world_size > 1:
            self._group = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
            StopSignal._active = self

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        StopSignal._active = None

    def _handle(self, signum: int, frame) -> None:
        if self.signum:  # the second signal: stop now
            self.uninstall()
            raise KeyboardInterrupt
        self.signum = signum
        if self.ctx.is_main:  # os.write: safe whatever the interrupted code was doing
            os.write(2, f"\nalae-train: {signal.Signals(signum).name} received: stopping after this step and writing "
                        f"a checkpoint (send it again to stop at once)\n".encode())

    def agreed(self) -> int:
        """The signal all ranks stop on after this step (the largest number any rank received), or 0."""
        if self.ctx.world_size == 1:
            return self.signum
        flag = torch.tensor([self.signum], dtype=torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
        return int(flag.item())

    def interrupted(self, signum: int, step: int, kimg: float, run_dir) -> TrainingInterrupted:
        """What the loop raises once the checkpoint of the stopping step is written."""
        return TrainingInterrupted(signum, f"stopped by {signal.Signals(signum).name} after step {step} (kimg "
                                           f"{kimg:.3f}); the checkpoint is {run_dir}/checkpoints/latest.pt; continue "
                                           f"with: alae-train --out {run_dir} --resume auto")


def _ignore_in_child() -> None:
    if StopSignal._active is not None:
        try:
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
        except ValueError:  # forked from a thread other than the main one: cannot set handlers
            pass
        StopSignal._active = None


os.register_at_fork(after_in_child=_ignore_in_child)
