"""alae-train: train a StyleALAE, on one process or many (torchrun).

    alae-train --config demo --out runs/demo
    torchrun --nproc_per_node=8 -m alae.train --config ffhq --data /data/ffhq-lmdb --out runs/ffhq
    alae-train --out runs/ffhq --resume auto              # continue from runs/ffhq/checkpoints/latest.pt
    alae-train --config ffhq --data /data/ffhq-lmdb --init ffhq-original.pt --start-kimg final   # fine-tune

Read top to bottom: arguments and config → run directory → networks and optimizers → resume →
the loop (schedule position, data, the three ALAE steps, EMA, logging, grids, checkpoints).
Only rank 0 writes files. Each optimizer step averages gradients over ranks explicitly.
"""
from __future__ import annotations

import argparse
import copy
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
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
from alae.datasets import DatasetError, to_model_range
from alae.ema import update_ema
from alae.grids import save_grids, to_full_resolution
from alae.layers import downsample2x
from alae.loading import Weights, read_weights
from alae.model import ALAE
from alae.schedule import Phase, ema_beta, final_stable_kimg, phase_at
from alae.training_step import make_optimizers, train_step

log = logging.getLogger("alae")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the run stops without writing a checkpoint."""


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


def init_start_images(args: argparse.Namespace, cfg: Config) -> int:
    """The schedule position (images) a run started with --init begins at."""
    if args.start_kimg is None:
        return 0
    if args.start_kimg == "final":
        kimg = final_stable_kimg(cfg.train, cfg.model.num_lods)
    else:
        try:
            kimg = float(args.start_kimg)
        except ValueError:
            raise ConfigError(f"--start-kimg must be a number or 'final', got {args.start_kimg!r}") from None
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


def setup_logging(run_dir: Path, is_main: bool) -> None:
    log.setLevel(logging.INFO if is_main else logging.WARNING)
    log.propagate = False
    log.handlers.clear()
    if is_main:
        file = logging.FileHandler(run_dir / "log.txt")
        file.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(file)
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(console)


def reduce_stats(stats: dict[str, torch.Tensor], ctx: distributed.Context, step: int, phase: Phase) -> dict[str, float]:
    """Average one step's statistics over ranks; raise TrainingDiverged on a non-finite value."""
    names = sorted(stats)
    if not names:
        return {}
    values = torch.stack([torch.as_tensor(stats[k], device=ctx.device, dtype=torch.float32) for k in names])
    distributed.all_reduce_mean_([values], ctx.world_size)
    result = dict(zip(names, values.tolist()))
    bad = [k for k, v in result.items() if not torch.isfinite(torch.tensor(v))]
    if bad:
        raise TrainingDiverged(f"non-finite {', '.join(bad)} at step {step} (lod {phase.lod}, alpha {phase.alpha:.3f}): "
                               f"{result}")
    return result


@torch.no_grad()
def reconstruction_mse(ema: ALAE, held_out_u8: torch.Tensor, phase: Phase, device,
                       seed: int) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Held-out reconstruction error of the EMA networks at the model's full resolution.

    The images are encoded at the phase's resolution (box-filter downsampled, as the database
    stores them) and the reconstructions nearest-upsampled back, so the number measures what
    the reconstruction grids show and compares across lods. Returns (MSE in the pixel range
    [−1, 1], originals, reconstructions), both [N, C, R_full, R_full].
    """
    originals = to_model_range(held_out_u8.to(device))
    x = originals
    while x.shape[-1] > phase.resolution:
        x = downsample2x(x)
    noise = randomness.per_sample_noise(ema.G.noise_shapes(phase.lod), range(len(x)), device, seed, "eval")
    rec = to_full_resolution(ema.reconstruct(x, phase.lod, phase.alpha, noise=noise), originals.shape[-1])
    return (rec - originals).square().mean().item(), originals, rec


def main(argv=None) -> int:
    args = parse_args(argv)
    ctx = None
    try:
        ctx = distributed.init(args.device)
        train(args, ctx)
        return 0
    except (ConfigError, CheckpointError, DatasetError, TrainingDiverged, FileNotFoundError) as e:
        print(f"alae-train: error: {e}", file=sys.stderr)
        return 1
    finally:
        distributed.shutdown()


def train(args: argparse.Namespace, ctx: distributed.Context) -> Path:
    # --- config and run directory -------------------------------------------------------------
    cfg, run_dir, init = resolve_config(args)
    check_world_size(cfg, ctx.world_size)
    resume_path = find_resume_path(args.resume, run_dir) if args.resume else None
    if ctx.is_main:
        data_path = resolve_data_path(cfg, args.data)  # may build the demo database once
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    distributed.barrier(ctx.world_size)
    if not ctx.is_main:
        data_path = resolve_data_path(cfg, args.data)
    setup_logging(run_dir, ctx.is_main)
    t, num_lods = cfg.train, cfg.model.num_lods
    num_images = len(open_images(data_path, cfg.model.resolution))
    num_train = num_images - cfg.data.holdout
    if num_train <= 0:
        raise ConfigError(f"data.holdout = {cfg.data.holdout} leaves no training images ({num_images} in {data_path})")
    log.info(f"run {run_dir} | data {data_path}: {num_train} training + {cfg.data.holdout} held-out images | "
             f"world size {ctx.world_size} on {ctx.device}")

    # --- networks, EMA, optimizers ------------------------------------------------------------
    torch.manual_seed(t.seed)
    model = ALAE(cfg.model).to(ctx.device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizers = make_optimizers(model, cfg)
    progress = Progress()

    if resume_path is not None:
        payload = load_checkpoint(resume_path)
        if "optimizers" not in payload:
            raise CheckpointError(f"{resume_path} holds networks only (no optimizer state or schedule position); "
                                  f"start a new run from it with --init {resume_path}")
        if from_dict(payload["config"]).model != cfg.model:
            raise CheckpointError(f"{resume_path} was trained with a different model config than {args.config}")
        model.load_state_dict(payload["model"])
        ema.load_state_dict(payload["ema"])
        for name, opt in optimizers.items():
            opt.load_state_dict(payload["optimizers"][name])
        progress = Progress(**payload["progress"])
        log.info(f"resumed from {resume_path} at {progress.kimg:.1f} kimg (step {progress.step})")
    elif init is not None:
        model.load_state_dict(init.model if init.model is not None else init.ema)
        ema.load_state_dict(init.ema)
        progress.images_seen = init_start_images(args, cfg)
        phase = phase_at(t, num_lods, progress.images_seen)
        log.info(f"initialised from {init.path} ({init.kind}); the schedule starts at {progress.kimg:.1f} kimg "
                 f"(lod {phase.lod}, alpha {phase.alpha:.2f})")
        for note in init.notes:
            log.info(f"--init: {note}")
    distributed.broadcast_module_(model, ctx.world_size)
    distributed.broadcast_module_(ema, ctx.world_size)

    # --- fixed inputs for the grids -----------------------------------------------------------
    grid = cfg.log.grid_size
    grid_z = randomness.global_normal((grid * grid, cfg.model.latent_dim), slice(None), t.seed, "grid").to(ctx.device)
    held_out = held_out_images(data_path, cfg.model.resolution, cfg.data.holdout)
    writer = SummaryWriter(str(run_dir / "tb")) if ctx.is_main else None

    def write_outputs(phase: Phase, save: bool) -> float | None:
        mse = None
        if ctx.is_main:
            mse, originals, recs = reconstruction_mse(ema, held_out, phase, ctx.device, t.seed)
            save_grids(ema, grid_z, originals[:grid], recs[:grid], phase, cfg, run_dir / "samples", progress.kimg, writer)
            writer.add_scalar("Eval/reconstruction_mse", mse, progress.images_seen)
            log.info(f"kimg {progress.kimg:.1f}: held-out reconstruction MSE {mse:.4f} "
                     f"({len(held_out)} images, EMA networks at {phase.resolution} px)")
        if save:
            if ctx.is_main:
                payload = {"config": to_dict(cfg), "model": model.state_dict(), "ema": ema.state_dict(),
                           "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                           "progress": asdict(progress)}
                path = save_checkpoint(run_dir / "checkpoints", payload, progress.kimg, cfg.log.keep_checkpoints)
                log.info(f"saved {path}")
            distributed.barrier(ctx.world_size)
        return mse

    total_images = int(round(t.total_kimg * 1000))
    phase = phase_at(t, num_lods, progress.images_seen)
    start_mse, end_mse = write_outputs(phase, save=False), None
    start_time, start_images = time.perf_counter(), progress.images_seen
    pbar = tqdm(total=total_images, initial=progress.images_seen, unit="img", unit_scale=True,
                disable=not ctx.is_main, dynamic_ncols=True)

    # --- the loop -----------------------------------------------------------------------------
    loader_key, batches = None, None
    next_tb, next_sample, next_ckpt = (
        (progress.images_seen // int(k * 1000) + 1) * int(k * 1000)
        for k in (cfg.log.kimg_per_tb, cfg.log.kimg_per_sample, cfg.log.kimg_per_checkpoint)
    )
    tick_time, tick_images = time.perf_counter(), progress.images_seen
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

        stats = reduce_stats(train_step(model, optimizers, next(batches), phase, cfg, ctx, progress.step), ctx,
                             progress.step, phase)
        update_ema(ema, model, ema_beta(phase.batch, t.ema_halflife_kimg))

        position = DataPosition(progress.data_epoch, progress.data_offset).advance(phase.batch, num_train)
        progress.data_epoch, progress.data_offset = position.epoch, position.offset
        progress.images_seen += phase.batch
        progress.step += 1
        pbar.update(phase.batch)
        pbar.set_postfix_str(f"kimg {progress.kimg:.1f} lod {phase.lod} a {phase.alpha:.2f} "
                             + " ".join(f"{k.removeprefix('loss_')} {v:.3f}" for k, v in stats.items()
                                        if k.startswith("loss") or k == "r1"))

        done = progress.images_seen >= total_images
        if progress.images_seen >= next_tb or done:
            now = time.perf_counter()
            img_per_s = (progress.images_seen - tick_images) / max(now - tick_time, 1e-9)
            tick_time, tick_images = now, progress.images_seen
            if writer is not None:
                for k, v in stats.items():
                    writer.add_scalar(f"Loss/{k}", v, progress.images_seen)
                for k, v in (("lod", phase.lod), ("alpha", phase.alpha), ("lr", phase.lr), ("batch", phase.batch)):
                    writer.add_scalar(f"Schedule/{k}", v, progress.images_seen)
                writer.add_scalar("Progress/kimg", progress.kimg, progress.images_seen)
                writer.add_scalar("Progress/img_per_s", img_per_s, progress.images_seen)
            log.debug(f"kimg {progress.kimg:.1f} {stats} {img_per_s:.1f} img/s")
            next_tb += int(cfg.log.kimg_per_tb * 1000)
        if progress.images_seen >= next_sample or progress.images_seen >= next_ckpt or done:
            save = progress.images_seen >= next_ckpt or done
            end_mse = write_outputs(phase, save)
            while next_sample <= progress.images_seen:
                next_sample += int(cfg.log.kimg_per_sample * 1000)
            while next_ckpt <= progress.images_seen:
                next_ckpt += int(cfg.log.kimg_per_checkpoint * 1000)
    pbar.close()
    if writer is not None:
        writer.close()
    elapsed = time.perf_counter() - start_time
    log.info(f"done: {progress.kimg:.1f} kimg in {run_dir}; {progress.images_seen - start_images} images in "
             f"{elapsed:.0f} s ({(progress.images_seen - start_images) / max(elapsed, 1e-9):.1f} img/s)")
    if ctx.is_main and end_mse is not None:
        log.info(f"held-out reconstruction MSE: {start_mse:.4f} at the start of this run -> {end_mse:.4f} at the end")
    return run_dir


if __name__ == "__main__":
    sys.exit(main())
