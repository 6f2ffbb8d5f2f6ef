"""The training loop: `train(cfg, run_dir, data, ctx, inputs)`, read top to bottom.

Threads → networks and optimizers → resume or init → the loop (schedule position, data, the
objective's step, EMA) → at each tick's end: its statistics (one reduction over steps and
ranks, which is also the divergence check), its records, then the sample grids, checkpoint and
metrics that are due. A first SIGINT or SIGTERM ends the loop after its step, as a tick's end
with a checkpoint (`stop_signal`). Only rank 0 writes files, config.yaml with each checkpoint.
The objective's step averages gradients over ranks explicitly. A step does only what changes
per step: the learning rate is written when the schedule changes it, batches come from the
run's data (`RunData`, opened once) and no statistic is read back before the tick ends. The
command line around it is `alae.train`.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

import alae.distributed as distributed
import alae.randomness as randomness
from alae.config import Config, save_config, to_dict
from alae.model import COMPUTE_DTYPES, LatentAutoencoder
from alae.model_files.checkpoint import save_checkpoint
from alae.model_files.loading import Weights
from alae.progress import progress as progress_bar
from alae.threads import apply_threads, refresh_threads, release_threads
from alae.training.data import DataPosition
from alae.training.ema import update_ema
from alae.training.metrics import reconstruction_mse, snapshot_metrics
from alae.training.objectives import objective_named
from alae.training.records import TrainingRecords, setup_logging
from alae.training.reports import TickReport, peak_gpu_memory_gib
from alae.training.run_data import RunData
from alae.training.samples import save_grids, save_plots
from alae.training.schedule import Milestones, ema_beta, images_in, phase_at, tick_at
from alae.training.stats import TickStats
from alae.training.stop_signal import StopSignal

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
    notes: tuple[str, ...] = ()  # what the command line found on the way (checkpoints passed over ...), to log


def new_networks(cfg: Config, device: torch.device,
                 objective) -> tuple[LatentAutoencoder, LatentAutoencoder, dict[str, torch.optim.Optimizer]]:
    """Fresh networks seeded by train.seed, in the compute dtype of train.precision, on `device`;
    their EMA copy (eval mode, no gradients, the same compute dtype); the objective's optimizers."""
    torch.manual_seed(cfg.train.seed)
    model = LatentAutoencoder(cfg, compute_dtype=COMPUTE_DTYPES[cfg.train.precision]).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    return model, ema, objective.make_optimizers(model, cfg)


def start_networks(cfg: Config, ctx: distributed.Context, inputs: RunInputs,
                   objective) -> tuple[LatentAutoencoder, LatentAutoencoder, dict[str, torch.optim.Optimizer], Progress]:
    """The networks (in the compute dtype of train.precision), their EMA copy, the objective's
    optimizers and the progress the run starts from: new (seeded by train.seed), resumed from a
    checkpoint, or from --init weights; rank 0's on every rank."""
    model, ema, optimizers = new_networks(cfg, ctx.device, objective)
    progress = Progress()
    for note in inputs.notes:
        log.info(note)
    if inputs.checkpoint is not None:
        payload = inputs.checkpoint
        model.load_state_dict(payload["model"])
        ema.load_state_dict(payload["ema"])
        for name, opt in optimizers.items():
            configured = [{k: v for k, v in group.items() if k != "params"} for group in opt.param_groups]
            opt.load_state_dict(payload["optimizers"][name])
            for group, settings in zip(opt.param_groups, configured):  # lr_mul, gradient_clip: the config's
                group.pop("lr_mul", None)
                group.update(settings)
        progress = Progress(**payload["progress"])
        log.info(f"resumed from {inputs.checkpoint_path} at {progress.kimg:.1f} kimg (step {progress.step})")
    elif inputs.init is not None:
        init = inputs.init
        model.load_state_dict(init.model if init.model is not None else init.ema)
        ema.load_state_dict(init.ema)
        progress.images_seen = inputs.start_images
        phase = phase_at(cfg.train, cfg.model, progress.images_seen)
        log.info(f"initialised from {init.path} ({init.kind}); the schedule starts at {progress.kimg:.1f} kimg "
                 f"(lod {phase.lod}, alpha {phase.alpha:.2f})")
        for note in init.notes:
            log.info(f"--init: {note}")
    distributed.broadcast_module_(model, ctx.world_size)
    distributed.broadcast_module_(ema, ctx.world_size)
    return model, ema, optimizers, progress


def train(cfg: Config, run_dir: Path, data: RunData, ctx: distributed.Context,
          inputs: RunInputs = RunInputs()) -> Path:
    """Train until `train.total_kimg` thousand images; returns `run_dir`.

    `cfg` is validated (load_config / from_dict) and checked for `ctx.world_size` and its
    metrics (as `prepare_run` does); `data` is the run's data, opened with it (`RunData(path,
    cfg)`); rank 0 writes into `run_dir`, which has `checkpoints/`. Raises TrainingDiverged at
    the end of a tick with a non-finite statistic, before anything of that tick is written.
    """
    setup_logging(run_dir, ctx.is_main)
    t, lg = cfg.train, cfg.log
    threads, threads_why = apply_threads(t.threads)
    log.info(f"run {run_dir} | data {data.path}: {data.num_train} training + {data.holdout} held-out images | "
             f"world size {ctx.world_size} on {ctx.device} | {threads} CPU threads ({threads_why})")
    objective = objective_named(t.objective)
    model, ema, optimizers, progress = start_networks(cfg, ctx, inputs, objective)
    if hasattr(objective, "pretrain") and inputs.checkpoint is None and inputs.init is None:
        full = data.images(data.resolution)
        note = objective.pretrain(model, cfg, ctx, lambda index: torch.stack([full[int(i)] for i in index]),
                                  data.num_train)
        if note:
            ema.load_state_dict(model.state_dict())  # the EMA starts from the pre-trained networks
            log.info(note)
    labelled = data.labelled
    if labelled is not None:
        log.info(f"semi-supervised: the labels of {len(labelled.indices)} training images "
                 f"({cfg.data.labelled // cfg.traits.class_head} per class)")

    # --- fixed inputs for the grids and metrics; rank 0's records ------------------------------
    grid_z = model.prior.sample(lg.grid_size**2, randomness.generator(t.seed, "grid")).to(ctx.device)
    held_out, all_held_labels = data.held_out_images, data.held_out_labels
    held_labels = all_held_labels if model.decoder_labels else None
    records = TrainingRecords(run_dir) if ctx.is_main else None

    def write_grids(phase) -> float:
        """Rank 0: the sample and reconstruction grids; returns the held-out reconstruction MSE."""
        mse, originals, recs = reconstruction_mse(ema, held_out, phase, ctx.device, t.seed, held_labels)
        save_grids(ema, grid_z, originals[:lg.grid_size], recs[:lg.grid_size], phase, cfg, run_dir / "samples",
                   progress.kimg, records.writer)
        save_plots(ema, originals, all_held_labels, phase, run_dir / "samples", progress.kimg, records.stats_path)
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
            save_config(cfg, run_dir / "config.yaml")  # the run's config is the one its checkpoints hold
        distributed.barrier(ctx.world_size)

    total_images = int(round(t.total_kimg * 1000))
    stop = StopSignal(ctx)  # SIGINT, SIGTERM: finish the step, write a checkpoint, exit (stop_signal.py)
    pbar = progress_bar(total=total_images, initial=progress.images_seen, unit="img", unit_scale=True,
                        disable=not ctx.is_main)
    try:
        stop.install()
        maintenance_start = time.perf_counter()
        phase = phase_at(t, cfg.model, progress.images_seen)
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
        loader_key, batches, lr = None, None, None
        start_time = tick_start_time = time.perf_counter()
        start_images = tick_start_images = progress.images_seen
        tick, maintenance_s = tick_at(progress.images_seen, tick_images), start_time - maintenance_start
        while progress.images_seen < total_images:
            phase = phase_at(t, cfg.model, progress.images_seen)
            if phase.lod != progress.optimizer_lod:
                for opt in optimizers.values():
                    opt.state.clear()
                progress.optimizer_lod = phase.lod
            if (phase.lod, phase.batch) != loader_key:
                start = DataPosition(progress.data_epoch, progress.data_offset)
                batches = data.batches(phase.resolution, phase.batch, ctx.rank, ctx.world_size, t.seed, start,
                                       cfg.data.mirror, cfg.data.workers)
                loader_key = (phase.lod, phase.batch)
            if phase.lr != lr:  # the schedule's learning rate changes only with the lod
                for opt in optimizers.values():
                    for group in opt.param_groups:
                        group["lr"] = phase.lr * group.get("lr_mul", 1.0)
                lr = phase.lr

            batch = next(batches)
            if labelled is not None:
                batch = batch._replace(labelled=labelled.batch(phase.resolution, progress.step, phase.batch,
                                                               ctx.rank, ctx.world_size))
            step_stats = objective.train_step(model, optimizers, batch, phase, cfg, ctx, progress.step)
            tick_stats.add(progress.step, step_stats)
            update_ema(ema, model, ema_beta(phase.batch, t.ema_halflife_kimg))

            position = DataPosition(progress.data_epoch, progress.data_offset).advance(phase.batch, data.num_train)
            progress.data_epoch, progress.data_offset = position.epoch, position.offset
            progress.images_seen += phase.batch
            progress.step += 1
            pbar.update(phase.batch)
            stopping = stop.agreed()
            done = progress.images_seen >= total_images
            if not (ticks.reached(progress.images_seen) or done or stopping):
                continue

            # --- the tick's end: statistics (all ranks; may stop the run), records, what is due
            stats = tick_stats.reduce(ctx.world_size, f"in tick {tick} (kimg {tick_start_images / 1000:.3f}–"
                                                      f"{progress.kimg:.3f}); nothing of this tick was saved")
            tick_end_time = time.perf_counter()
            report = TickReport(tick=tick, images_seen=progress.images_seen, step=progress.step, phase=phase,
                                stats=stats, tick_images=progress.images_seen - tick_start_images,
                                seconds=tick_end_time - tick_start_time, maintenance_s=maintenance_s,
                                elapsed_s=tick_end_time - start_time, peak_gpu_gib=peak_gpu_memory_gib(ctx.device),
                                threads=threads, timestamp=time.time())
            if records is not None:
                records.tick(report)
                pbar.set_postfix_str(report.progress_bar_text(), refresh=False)
            if (changed := refresh_threads(t.threads)) is not None:  # another run came or went (alae.threads)
                threads, threads_why = changed
                log.info(f"{threads} CPU threads from tick {tick + 1} ({threads_why})")
            if not stopping and (samples.reached(progress.images_seen) or done) and ctx.is_main:
                end_mse = write_grids(phase)
            if checkpoints.reached(progress.images_seen) or done or stopping:
                write_checkpoint()
            if stopping:
                interrupted = stop.interrupted(stopping, progress.step, progress.kimg, run_dir)
                log.info(str(interrupted))
                raise interrupted
            if lg.metrics and (metric_ticks.reached(progress.images_seen) or done):
                results = snapshot_metrics(lg.metrics, ema, phase, data, cfg, ctx, progress.kimg)
                if records is not None:
                    records.metrics(results, report)
            tick_start_time, tick_start_images = time.perf_counter(), progress.images_seen
            tick, maintenance_s = tick_at(progress.images_seen, tick_images), tick_start_time - tick_end_time
    finally:  # also when the run stops: the bar ends its line, TensorBoard gets what it has
        stop.uninstall()
        release_threads()
        pbar.close()
        if records is not None:
            records.close()
    elapsed = time.perf_counter() - start_time
    log.info(f"done: {progress.kimg:.1f} kimg in {run_dir}; {progress.images_seen - start_images} images in "
             f"{elapsed:.0f} s ({(progress.images_seen - start_images) / max(elapsed, 1e-9):.1f} img/s)")
    if end_mse is not None:
        log.info(f"held-out reconstruction MSE: {start_mse:.4f} at the start of this run -> {end_mse:.4f} at the end")
    return run_dir
