"""alae-train: train a StyleALAE, on one process or many (torchrun).

    alae-train --config demo --out runs/demo
    torchrun --nproc_per_node=8 -m alae.train --config ffhq --data /data/ffhq-lmdb --out runs/ffhq
    alae-train --out runs/ffhq --resume auto              # continue from runs/ffhq/checkpoints/latest.pt
    alae-train --config ffhq --data /data/ffhq-lmdb --init ffhq-original.pt --start-kimg final   # fine-tune

The command line: arguments → config → run directory, data and what the run starts from
(`prepare_run`) → `alae.training.loop.train`, which takes a validated config, the run's data
and paths, not arguments. Errors a user can fix are one line (`alae-train: error: ...`), also in the run's
log.txt once it has one. One process trains in a run folder at a time (`alae.run_folder`); a
new run never starts over an existing one (`--resume auto` continues it). Exit status: 0, 1 on
an error, 130 / 143 when a SIGINT / SIGTERM stopped the run after writing a checkpoint
(`alae.training.stop_signal`).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import sys
from pathlib import Path

import alae.distributed as distributed
from alae.cli import run_tool
from alae.config import (
    Config,
    ConfigError,
    apply_overrides,
    architecture_of,
    check_world_size,
    from_dict,
    load_config,
    to_dict,
)
from alae.files import create_folder
from alae.model_files.checkpoint import CheckpointError, find_resume_path, load_checkpoint
from alae.model_files.loading import Weights, read_weights
from alae.run_folder import RunLock, check_run_folder, lock_run_folder, remove_stale_temporaries
from alae.training.data import resolve_data_path
from alae.training.loop import RunInputs, train
from alae.training.metrics import check_training_metrics
from alae.training.records import close_logging
from alae.training.run_data import RunData
from alae.training.schedule import final_stable_kimg

log = logging.getLogger("alae")

DATA_WORDS = ("lfw", "mnist")  # the embedded data sets that --data names by a word (resolve_data_path)


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


def resolve_config(args: argparse.Namespace, checkpoint: dict | None = None) -> tuple[Config, Weights | None]:
    """The config and the --init weights. The config is --config (a name or a YAML path), or,
    resuming without it, the config of the checkpoint resumed (`checkpoint`; a run that has
    none yet: its config.yaml); then this command's overrides and --kimg, and --data recorded
    as data.path. With --init, the model section comes from the weights and only model.*
    overrides change it. Overrides of an earlier command are in the config only if a
    checkpoint was written with them."""
    if args.start_kimg is not None and not args.init:
        raise ConfigError("--start-kimg needs --init (a resumed run continues where its checkpoint stopped)")
    init = read_weights(args.init) if args.init else None
    model = to_dict(init.config)["model"] if init else None
    if args.config is not None:
        cfg = load_config(args.config, args.overrides, model=model)
    elif checkpoint is not None:
        cfg = from_dict(apply_overrides(copy.deepcopy(checkpoint["config"]), list(args.overrides)))
    else:
        saved = Path(args.out or "") / "config.yaml"
        if not (args.resume and args.out and saved.is_file()):
            raise ConfigError(f"--config is required: --out {args.out} holds no checkpoint to resume"
                              if args.resume and args.out else
                              "--config is required (except with --resume and the --out of a run)")
        cfg = load_config(str(saved), args.overrides, model=model)
    if init is not None and checkpoint is None:
        theirs, ours = architecture_of(init.config), architecture_of(cfg)
        differ = [f"{k} {theirs[k]!r} there, {ours[k]!r} here" for k in ours if theirs[k] != ours[k]]
        if differ:
            raise ConfigError(f"--init {args.init} has other networks than this config: {'; '.join(differ)}")
    if args.kimg is not None:
        if args.kimg <= 0:
            raise ConfigError(f"--kimg must be positive, got {args.kimg}")
        cfg.train.total_kimg = args.kimg
    if args.data:  # recorded, so that `--resume auto` without --data reads the same images
        cfg.data.path = args.data if args.data in DATA_WORDS else str(Path(args.data).expanduser().absolute())
    if cfg.name == "custom" and args.config is not None:
        cfg.name = Path(args.config).stem
    return cfg, init


def prepare_run(args: argparse.Namespace, ctx: distributed.Context) -> tuple[Config, Path, RunData, RunInputs]:
    """Everything before training that the command line decides, checked in an order that writes
    nothing before all is known to be right: the config, when --config gives it; the run folder
    (rank 0: `alae.run_folder`; locked at once if it exists); the checkpoint to resume (rank 0
    chooses the newest complete one, every rank reads it) and the config from it when there is no
    --config; the world size and metrics; the run's data, opened and checked against the config
    (`RunData`; rank 0 first: `lfw` may build the demo database); then rank 0 creates and locks a
    new folder and removes the temporaries of killed writes. A refusal on rank 0 reaches every rank. config.yaml is written with each checkpoint
    (alae.training.loop), so it is never the config of a command that saved nothing."""
    if args.config is None and not (args.resume and args.out):
        raise ConfigError("--config is required (except with --resume and the --out of a run)")
    cfg, init = resolve_config(args) if args.config is not None else (None, None)
    run_dir = Path(args.out) if args.out else Path("runs") / cfg.name
    resuming = args.resume is not None
    distributed.on_main(lambda: claim_run_folder(run_dir, resuming, create=False), ctx)
    resume, notes = distributed.on_main(lambda: choose_checkpoint(args.resume, run_dir), ctx) if resuming else (None, [])
    checkpoint = read_resume_checkpoint(resume) if resume is not None else None
    if cfg is None:
        cfg, init = resolve_config(args, checkpoint)
    check_world_size(cfg, ctx.world_size)
    check_training_metrics(cfg.log.metrics)
    if checkpoint is not None:  # --init only seeds a run that has no checkpoint yet
        check_same_networks(checkpoint, resume, cfg)
        inputs = RunInputs(checkpoint_path=resume, checkpoint=checkpoint)
    else:
        inputs = RunInputs(init=init, start_images=init_start_images(args.start_kimg, cfg) if init is not None else 0)
    data: RunData | None = None

    def data_and_folder() -> list[str]:
        nonlocal data
        data = RunData(resolve_data_path(cfg, args.data), cfg)
        return claim_run_folder(run_dir, resuming, create=True)

    removed = distributed.on_main(data_and_folder, ctx)
    if not ctx.is_main:
        data = RunData(resolve_data_path(cfg, args.data), cfg)
    return cfg, run_dir, data, dataclasses.replace(inputs, notes=(*removed, *notes))


_held_locks: dict[Path, RunLock] = {}  # the run folders this process trains in (released by main)


def claim_run_folder(run_dir: Path, resuming: bool, create: bool) -> list[str]:
    """Rank 0: refuse a folder that cannot take this run; lock it if it exists (or, with `create`,
    after creating it) and check again under the lock; with `create`, make checkpoints/ and
    remove stale temporaries (their notes are returned)."""
    check_run_folder(run_dir, resuming)
    key = run_dir.absolute()
    if key not in _held_locks and (create or run_dir.is_dir()):
        _held_locks[key] = lock_run_folder(run_dir)
        check_run_folder(run_dir, resuming)
    if not create:
        return []
    create_folder(run_dir / "checkpoints", "--out")
    unlocked = _held_locks[key].unlocked_because
    return ([unlocked] if unlocked else []) + remove_stale_temporaries(run_dir)


def release_run_folders() -> None:
    """Let other processes into the run folders this one has claimed."""
    while _held_locks:
        _held_locks.popitem()[1].release()


def choose_checkpoint(resume: str, run_dir: Path) -> tuple[Path | None, list[str]]:
    """Rank 0: the checkpoint --resume names (`find_resume_path`: with `auto`, the run's newest
    complete one) and what was passed over to find it."""
    notes: list[str] = []
    return find_resume_path(resume, run_dir, notes), notes


def read_resume_checkpoint(path: Path) -> dict:
    """The checkpoint at `path`, if a run can continue from it; CheckpointError if it holds
    networks only."""
    payload = load_checkpoint(path)
    if "optimizers" not in payload:
        raise CheckpointError(f"{path} holds networks only (no optimizer state or schedule position); "
                              f"start a new run from it with --init {path}")
    return payload


def check_same_networks(payload: dict, path: Path, cfg: Config) -> None:
    """CheckpointError if the checkpoint was trained with other networks (model section, objective)."""
    saved, ours = architecture_of(from_dict(payload["config"])), architecture_of(cfg)
    differ = [k for k in ours if saved[k] != ours[k]]
    if differ:
        raise CheckpointError(f"{path} was trained with another model config: {', '.join(differ)} differ "
                              f"from this run's")


def main(argv=None) -> int:
    args = parse_args(argv)

    def body() -> None:
        ctx = distributed.init(args.device)
        cfg, run_dir, data, inputs = prepare_run(args, ctx)
        train(cfg, run_dir, data, ctx, inputs)

    def log_error(message: str) -> None:
        if log.handlers:  # a started run's log.txt says why it stopped
            log.error(message, extra={"console": False})

    try:
        return run_tool("alae-train", body, on_error=log_error)
    finally:
        close_logging()
        release_run_folders()
        distributed.shutdown()


if __name__ == "__main__":
    sys.exit(main())
