"""The trainer against a plain PyTorch loop: `python -m alae.tools.benchmark_loop [--config mnist-vae]`.

Trains the same config, on the same process and threads, in turns (`--rounds`, each `--kimg`
thousand images from fresh networks):

- **plain**: a hand-written loop: the training split read once into a uint8 tensor, batches
  drawn by index from one permutation per epoch (flipped where `data.mirror`), the same
  networks, Adam, loss and schedule, and an EMA of the weights after every step
  (`torch._foreach_lerp_`). For `vae` the step itself is written out (the objective's
  `vae_loss` on `torch.randn` draws, backward, Adam); other objectives run their own
  `train_step` inside the plain loop, which then measures the loop around the step only.
- **trainer**: `alae.training.loop.train`, the real trainer, into a temporary run directory,
  ticks, sample grids and checkpoints as configured; its img/s is the status line's (images of
  the ticks over their training time), so the tick ends' records are excluded as they are there.

Prints each run's img/s, the medians, their ratio, and then a profile of one more trainer run:
the time per step spent in each part of the loop (each callee of the loop timed with
`time.perf_counter` around it; the rest of the loop is what no part claims), and the time of
the tick ends. Overrides (`key=value`) apply to both. On the CPU only.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from unittest import mock

import torch

import alae.distributed as distributed
import alae.randomness as randomness
import alae.training.loop as loop
from alae.cli import ToolError, run_tool
from alae.config import Config, load_config
from alae.datasets import to_model_range
from alae.threads import add_threads_argument, apply_threads
from alae.training.data import Batch, resolve_data_path
from alae.training.objectives import objective_named
from alae.training.objectives.vae import vae_loss
from alae.training.records import TrainingRecords
from alae.training.run_data import RunData
from alae.training.schedule import ema_beta, phase_at
from alae.training.stats import TickStats

DRAWS = "random draws"
CPU = distributed.Context(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))


def plain_vae_step(model, optimizers: dict, images: torch.Tensor, cfg: Config) -> None:
    """One hand-written VAE step: loss on fresh N(0, I) draws, backward, Adam."""
    opt = optimizers["autoencoder"]
    opt.zero_grad(set_to_none=True)
    epsilon = torch.randn(images.shape[0], cfg.model.latent_dim)
    loss, _ = vae_loss(model, to_model_range(images), epsilon, 0, 1.0, None, cfg)
    loss.backward()
    opt.step()


def plain_loop(cfg: Config, path: Path, total_images: int) -> float:
    """img/s of the plain loop (module docstring) over `total_images` images, reading the training
    split and the first step included."""
    t = cfg.train
    objective = objective_named(t.objective)
    model, ema, optimizers = loop.new_networks(cfg, torch.device("cpu"), objective)
    ema_params, params = list(ema.parameters()), list(model.parameters())
    ema_buffers, buffers = list(ema.buffers()), list(model.buffers())
    ctx = CPU
    last_lod = phase_at(t, cfg.model, total_images - 1).lod
    start = time.perf_counter()
    data = RunData(path, cfg)
    num_train, labels = data.num_train, data.labels[:data.num_train]
    splits = {}
    for resolution in {cfg.model.resolution_at(lod) for lod in range(last_lod + 1)}:
        split = data.training_split(resolution)
        if split is None:
            raise ToolError(f"the training images at {resolution} px do not fit in memory, as the plain loop needs")
        splits[resolution] = split.clone()
    g = torch.Generator().manual_seed(t.seed)
    hand_written = t.objective == "vae" and cfg.model.num_lods == 1
    images_seen = step = offset = 0
    order, lod = torch.randperm(num_train, generator=g), None
    while images_seen < total_images:
        phase = phase_at(t, cfg.model, images_seen)
        if phase.lod != lod:
            lod = phase.lod
            for opt in optimizers.values():
                opt.state.clear()
                for group in opt.param_groups:
                    group["lr"] = phase.lr * group.get("lr_mul", 1.0)
        if offset + phase.batch > num_train:
            order, offset = torch.randperm(num_train, generator=g), 0
        rows = order[offset:offset + phase.batch]
        offset += phase.batch
        images = splits[phase.resolution][rows]
        if cfg.data.mirror:
            flip = torch.rand(len(rows), generator=g) < 0.5
            images[flip] = images[flip].flip(-1)
        if hand_written:
            plain_vae_step(model, optimizers, images, cfg)
        else:
            objective.train_step(model, optimizers, Batch(images, labels[rows]), phase, cfg, ctx, step)
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1.0 - ema_beta(phase.batch, t.ema_halflife_kimg))
            torch._foreach_copy_(ema_buffers, buffers)
        images_seen += phase.batch
        step += 1
    return images_seen / (time.perf_counter() - start)


class LoopProfile:
    """Seconds spent in named parts of the trainer's loop (from its first batch on), by wrapping
    what the loop calls; the tick ends' parts also count their calls."""

    STEP_PARTS = ("data", "objective step", "EMA", "schedule", "statistics", "progress bar")
    TICK_PARTS = ("tick records", "sample grids", "checkpoints", "metrics")

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.first_data: float | None = None
        self.running: set[str] = set()

    def timed(self, part: str, fn, counted: bool = True, within: str | None = None):
        """`fn`, its time added to `part` (and, if `counted`, one call of it); only while `within`
        is running when given; a call inside another call of the same part is not counted again."""
        def wrapper(*args, **kwargs):
            if part in self.running or (within is not None and within not in self.running):
                return fn(*args, **kwargs)
            start = time.perf_counter()
            self.running.add(part)
            try:
                return fn(*args, **kwargs)
            finally:
                self.running.discard(part)
                if self.first_data is not None:  # the start-up grids are not the loop's
                    self.seconds[part] += time.perf_counter() - start
                    self.calls[part] += counted
        return wrapper

    @property
    def steps(self) -> int:
        return self.calls["objective step"]

    def timed_batches(self, make_batches):
        profile = self

        def timed_loader(*args, **kwargs):
            batches = make_batches(*args, **kwargs)

            class Timed:
                def __iter__(self):
                    return self

                def __next__(self):
                    profile.first_data = profile.first_data or time.perf_counter()
                    return profile.timed("data", batches.__next__)()
            return Timed()
        return timed_loader

    def timed_objective(self, name: str):
        objective = objective_named(name)
        timed_step = self.timed("objective step", objective.train_step)

        class Timed:
            def __getattr__(self, attr):
                return getattr(objective, attr)

            train_step = staticmethod(timed_step)
        return Timed()

    @contextlib.contextmanager
    def patched(self):
        timed, progress_bar = self.timed, loop.progress_bar

        def timed_bar(*args, **kwargs):
            bar = progress_bar(*args, **kwargs)
            bar.update = timed("progress bar", bar.update)
            return bar

        with contextlib.ExitStack() as stack:
            for target, name, replacement in (
                (RunData, "batches", self.timed_batches(RunData.batches)),
                (loop, "objective_named", self.timed_objective),
                (loop, "update_ema", timed("EMA", loop.update_ema)),
                (loop, "phase_at", timed("schedule", loop.phase_at)),
                (loop, "progress_bar", timed_bar),
                (TickStats, "add", timed("statistics", TickStats.add)),
                (TickStats, "reduce", timed("tick records", TickStats.reduce)),
                (TrainingRecords, "tick", timed("tick records", TrainingRecords.tick, counted=False)),
                (loop, "reconstruction_mse", timed("sample grids", loop.reconstruction_mse, counted=False)),
                (loop, "save_grids", timed("sample grids", loop.save_grids)),
                (loop, "save_plots", timed("sample grids", loop.save_plots, counted=False)),
                (loop, "save_checkpoint", timed("checkpoints", loop.save_checkpoint)),
                (loop, "snapshot_metrics", timed("metrics", loop.snapshot_metrics)),
                (TrainingRecords, "metrics", timed("metrics", TrainingRecords.metrics, counted=False)),
                *((randomness, name, timed(DRAWS, getattr(randomness, name), within="objective step"))
                  for name in ("generator", "global_normal", "crossover_layers", "per_sample_noise")),
            ):
                stack.enter_context(mock.patch.object(target, name, replacement))
            yield self


def trainer_run(cfg: Config, path: Path, profile: LoopProfile | None = None) -> tuple[float, float]:
    """(img/s of the status line over all ticks, seconds from the first batch to the return of
    `train`) of `alae.training.loop.train` on the run's data opened anew, in a temporary run
    directory; its console output is dropped."""
    with tempfile.TemporaryDirectory(prefix="alae-benchmark-loop-") as tmp:
        run_dir = Path(tmp) / "run"
        (run_dir / "checkpoints").mkdir(parents=True)
        patched = profile.patched() if profile is not None else contextlib.nullcontext()
        with patched, contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            loop.train(cfg, run_dir, RunData(path, cfg), CPU)
        end = time.perf_counter()
        rows = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    ticks = [((row["images_seen"] - previous) / row["img_per_s"], row["images_seen"] - previous)
             for row, previous in zip(rows, [0] + [row["images_seen"] for row in rows])]
    loop_seconds = end - profile.first_data if profile is not None and profile.first_data else float("nan")
    return sum(images for _, images in ticks) / sum(seconds for seconds, _ in ticks), loop_seconds


def print_profile(profile: LoopProfile, loop_seconds: float) -> None:
    tick_seconds = sum(profile.seconds[part] for part in profile.TICK_PARTS)
    step_seconds = loop_seconds - tick_seconds
    rest = step_seconds - sum(profile.seconds[part] for part in profile.STEP_PARTS)
    print(f"profile of one more trainer run: {profile.steps} steps; ms per step and share of the step")
    for part in (*profile.STEP_PARTS, "the rest of the loop"):
        seconds = rest if part == "the rest of the loop" else profile.seconds[part]
        print(f"  {part:<22} {1000 * seconds / profile.steps:8.3f}  {100 * seconds / step_seconds:5.1f}%")
    print(f"  {'step total':<22} {1000 * step_seconds / profile.steps:8.3f}  100.0%")
    print(f"  of the objective step, {DRAWS} (alae.randomness): {1000 * profile.seconds[DRAWS] / profile.steps:.3f} ms")
    print("tick ends, seconds in all (times): " + ", ".join(
        f"{part} {profile.seconds[part]:.2f} ({profile.calls[part]})" for part in profile.TICK_PARTS))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="mnist-vae", help="config name or YAML path (default mnist-vae)")
    p.add_argument("--data", help="training data (default: the config's data.path)")
    p.add_argument("--kimg", type=float, default=30.0, help="thousands of images per run (default 30)")
    p.add_argument("--rounds", type=int, default=3, help="plain and trainer runs, taken in turns (default 3)")
    p.add_argument("--no-profile", action="store_true", help="skip the profiled trainer run")
    add_threads_argument(p)
    p.add_argument("overrides", nargs="*", metavar="key=value")
    args = p.parse_intermixed_args(argv)
    return run_tool("benchmark_loop", lambda: benchmark(args))


def benchmark(args: argparse.Namespace) -> None:
    threads, why = apply_threads(args.threads)
    cfg = load_config(args.config, [*args.overrides, f"train.total_kimg={args.kimg}", f"train.threads={threads}"])
    path = resolve_data_path(cfg, args.data)
    data = RunData(path, cfg)
    total_images = int(round(args.kimg * 1000))
    print(f"{cfg.name}: {args.kimg:g} kimg per run, {data.num_train} training images, batch {cfg.train.batch_per_lod}, "
          f"torch {torch.__version__}, {threads} threads ({why}), CPU")
    plain, trainer = [], []
    for round_ in range(1, args.rounds + 1):
        plain.append(plain_loop(cfg, path, total_images))
        trainer.append(trainer_run(cfg, path)[0])
        print(f"round {round_}: plain {plain[-1]:8.1f} img/s   trainer {trainer[-1]:8.1f} img/s", flush=True)
    plain_rate, trainer_rate = statistics.median(plain), statistics.median(trainer)
    print(f"median: plain {plain_rate:.1f} img/s, trainer {trainer_rate:.1f} img/s, "
          f"trainer / plain {trainer_rate / plain_rate:.3f}")
    if not args.no_profile:
        profile = LoopProfile()
        _, loop_seconds = trainer_run(cfg, path, profile)
        print_profile(profile, loop_seconds)


if __name__ == "__main__":
    sys.exit(main())
