"""alae-train: train a StyleALAE, on one process or many (torchrun).

    alae-train --config demo --out runs/demo
    torchrun --nproc_per_node=8 -m alae.train --config ffhq --data /data/ffhq-lmdb --out runs/ffhq
    alae-train --out runs/ffhq --resume auto              # continue from runs/ffhq/checkpoints/latest.pt
    alae-train --config ffhq --data /data/ffhq-lmdb --init ffhq-original.pt --start-kimg final   # fine-tune

The command line (`main`): arguments → config → run directory, data and what the run starts
from (`prepare_run`) → `train`, which takes a validated config and paths, not arguments. Read
`train` top to bottom: networks and optimizers → resume or init → the loop (schedule position,
data, the three ALAE steps, EMA) → at each tick's end: its statistics (one reduction over steps
and ranks, which is also the divergence check), its records, then the sample grids, checkpoint
and metrics that are due. Only rank 0 writes files. Each optimizer step averages gradients
over ranks explicitly.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from alae import distributed, randomness
from alae.checkpoint import (
    CheckpointError,
    find_resume_path,
    load_checkpoint,
    save_checkpoint,
)
from alae.config import (
    Config,
    ConfigError,
    check_world_size,
    from_dict,
    load_config,
    save_config,
    to_dict,
)
from alae.data import (
    DataPosition,
    held_out_images,
    make_loader,
    open_images,
    resolve_data_path,
)
from alae.datasets import DatasetError
from alae.ema import update_ema
from alae.grids import save_grids
from alae.loading import Weights, read_weights
from alae.model import ALAE
from alae.schedule import Milestones, ema_beta, final_stable_kimg, images_in, phase_at, tick_at
from alae.tick_report import TickReport, peak_gpu_memory_gib
from alae.training_metrics import check_training_metrics, reconstruction_mse, snapshot_metrics
from alae.training_records import TrainingRecords
from alae.training_stats import TickStats, TrainingDiverged
from alae.training_step import make_optimizers, train_step

log = logging.getLogger("alae")


@dataclass
class Progress:
    """Where the run is; saved in every checkpoint, identical on all ranks."""

    images_seen: int = 0
    step: int = 0
    data_epoch: int = 0
    data_offset: int = 0
    optimizer_lod: int = -1  # the lod the optimizer moments belong to (reset when the lod changes)

    @property
    def kimg(self) -> float:
        return self.images_seen / 1000.0


@dataclass(frozen=True)
class RunInputs:
    """What a run starts from besides its config: a checkpoint to resume, or weights for a new run."""

    checkpoint_path: Path | None = None
    checkpoint: dict | None = None  # its payload (read_resume_checkpoint): networks, optimizers, progress
    init: Weights | None = None  # networks to start a new run from (not used with a checkpoint)
    start_images: int = 0  # with init: the schedule position, in images, to start at


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="alae-train", description="Train a StyleALAE.")
    p.add_argument("--config", help="built-in config name (demo, ffhq, celeba-hq256, bedroom256) or a YAML path; "
                                    "when resuming, defaults to the run's config.yaml")
    p.add_argument("--data", help="training data: an alae LMDB (alae-prepare) or 'lfw'; overrides data.path")
    p.add_argument("--out", help="run directory (default runs/CONFIG_NAME)")
    p.add_argument("--kimg", type=float, help="train until this many thousand real images (overrides train.total_kimg)")
    p.add_argument("--resume", help="'auto' (the run directory's latest checkpoint, if any) or a checkpoint path")
    p.add_argument("--init", metavar="WEIGHTS",
                   help="start a new run from these networks (run directory, alae checkpoint, alae-convert output or "
                        "original ALAE .pth); the model section comes from them, optimizers and schedule start fresh")
    p.add_argument("--start-kimg", help="with --init: start the schedule at this many thousand images, or 'final' "
                                        "for the start of the last lod's stable phase (default 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.r1_gamma=5")
    return p.parse_intermixed_args(argv)  # overrides may come before or after the options


def init_start_images(start_kimg: str | None, cfg: Config) -> int:
    """The schedule position (images) a run started with --init begins at (--start-kimg)."""
    if start_kimg is None:
        return 0
    if start_kimg == "final":
        kimg = final_stable_kimg(cfg.train, cfg.model.num_lods)
    else:
        try:
            kimg = float(start_kimg)
        except ValueError:
            raise ConfigError(f"--start-kimg must be a number or 'final', got {start_kimg!r}") from None
    if not 0 <= kimg < cfg.train.total_kimg:
        raise ConfigError(f"--start-kimg {kimg:g} is outside [0, train.total_kimg = {cfg.train.total_kimg:g})")
    return int(round(kimg * 1000))


def resolve_config(args: argparse.Namespace) -> tuple[Config, Path, Weights | None]:
    """The config (file + overrides + --kimg; with --init, the model section comes from the
    weights and only model.* overrides change it), the run directory and the --init weights."""
    if args.config is None:
        saved = Path(args.out or "") / "config.yaml"
        if not (args.resume and args.out and saved.is_file()):
            raise ConfigError("--config is required (except with --resume and an --out holding a config.yaml)")
        args.config = str(saved)
    if args.start_kimg is not None and not args.init:
        raise ConfigError("--start-kimg needs --init (a resumed run continues where its checkpoint stopped)")
    init = read_weights(args.init) if args.init else None
    cfg = load_config(args.config, args.overrides, model=to_dict(init.config)["model"] if init else None)
    if args.kimg is not None:
        if args.kimg <= 0:
            raise ConfigError(f"--kimg must be positive, got {args.kimg}")
        cfg.train.total_kimg = args.kimg
    if cfg.name == "custom":
        cfg.name = Path(args.config).stem
    return cfg, Path(args.out or Path("runs") / cfg.name), init



def prepare_run(args: argparse.Namespace, ctx: distributed.Context) -> tuple[Config, Path, Path, RunInputs]:
    """Everything before training that the command line decides: the config, checked for this
    world size and its metrics before anything is written; the run directory (rank 0 creates it
    and writes config.yaml); the data path (rank 0 first: `lfw` may build the demo database);
    and what the run starts from."""
    cfg, run_dir, init = resolve_config(args)
    check_world_size(cfg, ctx.world_size)
    check_training_metrics(cfg.log.metrics)
    resume = find_resume_path(args.resume, run_dir) if args.resume else None
    if resume is not None:  # --init only seeds a run that has no checkpoint yet
        inputs = RunInputs(checkpoint_path=resume, checkpoint=read_resume_checkpoint(resume, cfg))
    else:
        inputs = RunInputs(init=init, start_images=init_start_images(args.start_kimg, cfg) if init is not None else 0)
    if ctx.is_main:
        data_path = resolve_data_path(cfg, args.data)
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    distributed.barrier(ctx.world_size)
    if not ctx.is_main:
        data_path = resolve_data_path(cfg, args.data)
    return cfg, run_dir, data_path, inputs


def read_resume_checkpoint(path: Path, cfg: Config) -> dict:
    """The checkpoint at `path`, if a run with `cfg` can continue from it; CheckpointError if it
    holds networks only or was trained with another model section."""
    payload = load_checkpoint(path)
    if "optimizers" not in payload:
        raise CheckpointError(f"{path} holds networks only (no optimizer state or schedule position); "
                              f"start a new run from it with --init {path}")
    saved = from_dict(payload["config"]).model
    if saved != cfg.model:
        differ = [f"model.{f.name}" for f in dataclasses.fields(saved)
                  if getattr(saved, f.name) != getattr(cfg.model, f.name)]
        raise CheckpointError(f"{path} was trained with another model config: {', '.join(differ)} differ "
                              f"from this run's")
    return payload


class ConsoleHandler(logging.StreamHandler):
    """Console lines written through tqdm, so that they do not tear the progress bar; records
    logged with `extra={"console": False}` go to log.txt only."""

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(record, "console", True):
            return
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def setup_logging(run_dir: Path, is_main: bool) -> None:
    """Rank 0 logs INFO to RUN/log.txt (appending) and the console; other ranks log nothing below WARNING."""
    close_logging()
    log.setLevel(logging.INFO if is_main else logging.WARNING)
    log.propagate = False
    if is_main:
        file = logging.FileHandler(run_dir / "log.txt")
        file.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(file)
        console = ConsoleHandler(sys.stdout)
        console.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(console)


def close_logging() -> None:
    for handler in log.handlers:
        handler.close()
    log.handlers.clear()


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        ctx = distributed.init(args.device)
        cfg, run_dir, data_path, inputs = prepare_run(args, ctx)
        train(cfg, run_dir, data_path, ctx, inputs)
        return 0
    except (ConfigError, CheckpointError, DatasetError, TrainingDiverged, FileNotFoundError) as e:
        message = f"alae-train: error: {e}"
        if log.handlers:  # a started run's log.txt says why it stopped
            log.error(message, extra={"console": False})
        print(message, file=sys.stderr)
        return 1
    finally:
        close_logging()
        distributed.shutdown()


def start_networks(cfg: Config, ctx: distributed.Context,
                   inputs: RunInputs) -> tuple[ALAE, ALAE, dict[str, torch.optim.Optimizer], Progress]:
    """The networks, their EMA copy, the optimizers and the progress the run starts from: new
    (seeded by train.seed), resumed from a checkpoint, or from --init weights; rank 0's on every rank."""
    torch.manual_seed(cfg.train.seed)
    model = ALAE(cfg.model).to(ctx.device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizers = make_optimizers(model, cfg)
    progress = Progress()
    if inputs.checkpoint is not None:
        payload = inputs.checkpoint
        model.load_state_dict(payload["model"])
        ema.load_state_dict(payload["ema"])
        for name, opt in optimizers.items():
            opt.load_state_dict(payload["optimizers"][name])
        progress = Progress(**payload["progress"])
        log.info(f"resumed from {inputs.checkpoint_path} at {progress.kimg:.1f} kimg (step {progress.step})")
    elif inputs.init is not None:
        init = inputs.init
        model.load_state_dict(init.model if init.model is not None else init.ema)
        ema.load_state_dict(init.ema)
        progress.images_seen = inputs.start_images
        phase = phase_at(cfg.train, cfg.model.num_lods, progress.images_seen)
        log.info(f"initialised from {init.path} ({init.kind}); the schedule starts at {progress.kimg:.1f} kimg "
                 f"(lod {phase.lod}, alpha {phase.alpha:.2f})")
        for note in init.notes:
            log.info(f"--init: {note}")
    distributed.broadcast_module_(model, ctx.world_size)
    distributed.broadcast_module_(ema, ctx.world_size)
    return model, ema, optimizers, progress


def train(cfg: Config, run_dir: Path, data_path: Path, ctx: distributed.Context,
          inputs: RunInputs = RunInputs()) -> Path:
    """Train until `train.total_kimg` thousand images; returns `run_dir`.

    `cfg` is validated (load_config / from_dict) and checked for `ctx.world_size` and its
    metrics (as `prepare_run` does); rank 0 writes into `run_dir`, which has `checkpoints/`.
    Raises TrainingDiverged at the end of a tick with a non-finite statistic, before anything
    of that tick is written.
    """
    setup_logging(run_dir, ctx.is_main)
    t, lg, num_lods = cfg.train, cfg.log, cfg.model.num_lods
    num_images = len(open_images(data_path, cfg.model.resolution))
    num_train = num_images - cfg.data.holdout
    if num_train <= 0:
        raise ConfigError(f"data.holdout = {cfg.data.holdout} leaves no training images ({num_images} in {data_path})")
    log.info(f"run {run_dir} | data {data_path}: {num_train} training + {cfg.data.holdout} held-out images | "
             f"world size {ctx.world_size} on {ctx.device}")
    model, ema, optimizers, progress = start_networks(cfg, ctx, inputs)

    # --- fixed inputs for the grids and metrics; rank 0's records ------------------------------
    grid_shape = (lg.grid_size**2, cfg.model.latent_dim)
    grid_z = randomness.global_normal(grid_shape, slice(None), t.seed, "grid").to(ctx.device)
    held_out = held_out_images(data_path, cfg.model.resolution, cfg.data.holdout)
    records = TrainingRecords(run_dir) if ctx.is_main else None

    def write_grids(phase) -> float:
        """Rank 0: the sample and reconstruction grids; returns the held-out reconstruction MSE."""
        mse, originals, recs = reconstruction_mse(ema, held_out, phase, ctx.device, t.seed)
        save_grids(ema, grid_z, originals[:lg.grid_size], recs[:lg.grid_size], phase, cfg, run_dir / "samples",
                   progress.kimg, records.writer)
        records.writer.add_scalar("Eval/reconstruction_mse", mse, progress.images_seen)
        log.info(f"kimg {progress.kimg:.1f}: held-out reconstruction MSE {mse:.4f} "
                 f"({len(held_out)} images, EMA networks at {phase.resolution} px)")
        return mse

    def write_checkpoint() -> None:
        if ctx.is_main:
            payload = {"config": to_dict(cfg), "model": model.state_dict(), "ema": ema.state_dict(),
                       "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                       "progress": asdict(progress)}
            log.info(f"saved {save_checkpoint(run_dir / 'checkpoints', payload, progress.kimg, lg.keep_checkpoints)}")
        distributed.barrier(ctx.world_size)

    total_images = int(round(t.total_kimg * 1000))
    pbar = tqdm(total=total_images, initial=progress.images_seen, unit="img", unit_scale=True,
                disable=not ctx.is_main, dynamic_ncols=True)
    try:
        maintenance_start = time.perf_counter()
        phase = phase_at(t, num_lods, progress.images_seen)
        start_mse = write_grids(phase) if ctx.is_main else None
        end_mse = None
        tick_images = images_in(lg.kimg_per_tick)
        ticks, samples, checkpoints, metric_ticks = (
            Milestones(images_in(kimg), progress.images_seen)
            for kimg in (lg.kimg_per_tick, lg.kimg_per_sample, lg.kimg_per_checkpoint,
                         lg.kimg_per_metrics or lg.kimg_per_checkpoint)  # 0: with every checkpoint
        )
        tick_stats = TickStats()

        # --- the loop -------------------------------------------------------------------------
        loader_key, batches = None, None
        start_time = tick_start_time = time.perf_counter()
        start_images = tick_start_images = progress.images_seen
        tick, maintenance_s = tick_at(progress.images_seen, tick_images), start_time - maintenance_start
        while progress.images_seen < total_images:
            phase = phase_at(t, num_lods, progress.images_seen)
            if phase.lod != progress.optimizer_lod:
                for opt in optimizers.values():
                    opt.state.clear()
                progress.optimizer_lod = phase.lod
            if (phase.lod, phase.batch) != loader_key:
                start = DataPosition(progress.data_epoch, progress.data_offset)
                batches = iter(make_loader(data_path, phase.resolution, num_train, phase.batch, ctx.rank,
                                           ctx.world_size, t.seed, start, cfg.data.mirror, cfg.data.workers))
                loader_key = (phase.lod, phase.batch)
            for opt in optimizers.values():
                for group in opt.param_groups:
                    group["lr"] = phase.lr

            tick_stats.add(progress.step, train_step(model, optimizers, next(batches), phase, cfg, ctx, progress.step))
            update_ema(ema, model, ema_beta(phase.batch, t.ema_halflife_kimg))

            position = DataPosition(progress.data_epoch, progress.data_offset).advance(phase.batch, num_train)
            progress.data_epoch, progress.data_offset = position.epoch, position.offset
            progress.images_seen += phase.batch
            progress.step += 1
            pbar.update(phase.batch)
            done = progress.images_seen >= total_images
            if not (ticks.reached(progress.images_seen) or done):
                continue

            # --- the tick's end: statistics (all ranks; may stop the run), records, what is due
            stats = tick_stats.reduce(ctx.world_size, f"in tick {tick} (kimg {tick_start_images / 1000:.3f}–"
                                                      f"{progress.kimg:.3f}); nothing of this tick was saved")
            tick_end_time = time.perf_counter()
            report = TickReport(tick=tick, images_seen=progress.images_seen, step=progress.step, phase=phase,
                                stats=stats, tick_images=progress.images_seen - tick_start_images,
                                seconds=tick_end_time - tick_start_time, maintenance_s=maintenance_s,
                                elapsed_s=tick_end_time - start_time, peak_gpu_gib=peak_gpu_memory_gib(ctx.device),
                                timestamp=time.time())
            if records is not None:
                records.tick(report)
                pbar.set_postfix_str(report.progress_bar_text(), refresh=False)
            if (samples.reached(progress.images_seen) or done) and ctx.is_main:
                end_mse = write_grids(phase)
            if checkpoints.reached(progress.images_seen) or done:
                write_checkpoint()
            if lg.metrics and (metric_ticks.reached(progress.images_seen) or done):
                results = snapshot_metrics(lg.metrics, ema, phase, data_path, cfg, ctx, progress.kimg)
                if records is not None:
                    records.metrics(results, report)
            tick_start_time, tick_start_images = time.perf_counter(), progress.images_seen
            tick, maintenance_s = tick_at(progress.images_seen, tick_images), tick_start_time - tick_end_time
    finally:  # also when the run stops: the bar ends its line, TensorBoard gets what it has
        pbar.close()
        if records is not None:
            records.close()
    elapsed = time.perf_counter() - start_time
    log.info(f"done: {progress.kimg:.1f} kimg in {run_dir}; {progress.images_seen - start_images} images in "
             f"{elapsed:.0f} s ({(progress.images_seen - start_images) / max(elapsed, 1e-9):.1f} img/s)")
    if end_mse is not None:
        log.info(f"held-out reconstruction MSE: {start_mse:.4f} at the start of this run -> {end_mse:.4f} at the end")
    return run_dir


if __name__ == "__main__":
    sys.exit(main())
