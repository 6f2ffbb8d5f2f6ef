"""alae-train: train a StyleALAE, on one process or many (torchrun).

    alae-train --config demo --out runs/demo
    torchrun --nproc_per_node=8 -m alae.train --config ffhq --data /data/ffhq-lmdb --out runs/ffhq
    alae-train --out runs/ffhq --resume auto              # continue from runs/ffhq/checkpoints/latest.pt
    alae-train --config ffhq --data /data/ffhq-lmdb --init ffhq-original.pt --start-kimg final   # fine-tune

The command line: arguments → config → run directory, data and what the run starts from
(`prepare_run`) → `alae.training.loop.train`, which takes a validated config and paths, not
arguments. Errors a user can fix are one line (`alae-train: error: ...`), also in the run's
log.txt once it has one.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import alae.distributed as distributed
from alae.cli import run_tool
from alae.config import (
    Config,
    ConfigError,
    architecture_of,
    check_world_size,
    from_dict,
    load_config,
    save_config,
    to_dict,
)
from alae.model_files.checkpoint import CheckpointError, find_resume_path, load_checkpoint
from alae.model_files.loading import Weights, read_weights
from alae.training.data import resolve_data_path
from alae.training.loop import RunInputs, train
from alae.training.metrics import check_training_metrics
from alae.training.records import close_logging
from alae.training.schedule import final_stable_kimg

log = logging.getLogger("alae")


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
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.total_kimg=100 alae.r1_gamma=5")
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
    if init is not None:
        theirs, ours = architecture_of(init.config), architecture_of(cfg)
        differ = [f"{k} {theirs[k]!r} there, {ours[k]!r} here" for k in ours if theirs[k] != ours[k]]
        if differ:
            raise ConfigError(f"--init {args.init} has other networks than this config: {'; '.join(differ)}")
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
    holds networks only or was trained with other networks (model section, objective)."""
    payload = load_checkpoint(path)
    if "optimizers" not in payload:
        raise CheckpointError(f"{path} holds networks only (no optimizer state or schedule position); "
                              f"start a new run from it with --init {path}")
    saved, ours = architecture_of(from_dict(payload["config"])), architecture_of(cfg)
    differ = [k for k in ours if saved[k] != ours[k]]
    if differ:
        raise CheckpointError(f"{path} was trained with another model config: {', '.join(differ)} differ "
                              f"from this run's")
    return payload


def main(argv=None) -> int:
    args = parse_args(argv)

    def body() -> None:
        ctx = distributed.init(args.device)
        cfg, run_dir, data_path, inputs = prepare_run(args, ctx)
        train(cfg, run_dir, data_path, ctx, inputs)

    def log_error(message: str) -> None:
        if log.handlers:  # a started run's log.txt says why it stopped
            log.error(message, extra={"console": False})

    try:
        return run_tool("alae-train", body, on_error=log_error)
    finally:
        close_logging()
        distributed.shutdown()


if __name__ == "__main__":
    sys.exit(main())
