"""The runs of a comparison: which to train, which to read, and when one is finished.

    runs = plan_runs(["mnist-vae", "runs/old-alae"], seeds=[0, 1], root=DIR / "runs", kimg=20, overrides=[])
    for run in runs:
        if not run.finished:
            train_run(run, "cpu")

A CONFIG_OR_RUN that is a directory holding `config.yaml` is a finished run, read as it is
(its system: its config's name; its seed: its train.seed; its wall time only if an earlier
alae-compare trained it). Anything else is a
config (a built-in name or a YAML path) trained once per seed into `ROOT/NAME-seedS` with
train.seed = S, train.total_kimg = kimg (when given) and the overrides. A trained run is
finished once `TRAINED_MARKER` exists in it: written atomically after the training loop
returns, holding the wall time, so an interrupted comparison trains again only the runs that
have none (their partial directories are removed first). A finished run trained with other
settings than the comparison now asks for (another --kimg or overrides) is a ConfigError: its
figures would not be those of this comparison.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import alae.distributed as distributed
from alae import train as train_cli
from alae.config import Config, ConfigError, load_config, to_dict
from alae.files import save_json
from alae.training.loop import train
from alae.training.records import close_logging

TRAINED_MARKER = "compare-trained.json"  # {"seconds": wall time of training, "kimg": images trained on}
RUN_CONFIG = "config.yaml"  # what alae-train writes into every run directory


@dataclass
class Run:
    """One trained or read model of a comparison: `config` is what trains it (None: read as it is)."""

    system: str
    seed: int
    run_dir: Path
    cfg: Config
    config: str | None = None
    overrides: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.config is None or (self.run_dir / TRAINED_MARKER).is_file()

    @property
    def seconds(self) -> float | None:
        """Wall time of training in seconds, from TRAINED_MARKER (None without one: a run alae-compare did not train)."""
        marker = self.run_dir / TRAINED_MARKER
        return json.loads(marker.read_text())["seconds"] if marker.is_file() else None


def plan_runs(inputs: list[str], seeds: list[int], root: Path, kimg: float | None, overrides: list[str]) -> list[Run]:
    """The runs of `inputs` (module docstring); ConfigError (one line) on an unknown config or override."""
    runs = []
    for given in inputs:
        if (Path(given) / RUN_CONFIG).is_file():
            cfg = load_config(str(Path(given) / RUN_CONFIG))
            runs.append(Run(cfg.name, cfg.train.seed, Path(given), cfg))
            continue
        for seed in seeds:
            run_overrides = [*overrides, f"train.seed={seed}", *([f"train.total_kimg={kimg}"] if kimg else [])]
            cfg = load_config(given, run_overrides)
            name = cfg.name if cfg.name != "custom" else Path(given).stem
            run = Run(name, seed, root / f"{name}-seed{seed}", cfg, given, run_overrides)
            if run.finished:
                check_same_settings(run)
            runs.append(run)
    return runs


def check_same_settings(run: Run) -> None:
    """ConfigError naming the config sections in which a finished run's config.yaml differs from `run.cfg`."""
    saved, planned = to_dict(load_config(str(run.run_dir / RUN_CONFIG))), to_dict(run.cfg)
    differ = [section for section in planned if section != "name" and saved.get(section) != planned[section]]
    if differ:
        raise ConfigError(f"{run.run_dir} was trained with other settings ({', '.join(differ)} differ from this "
                          f"comparison's); give a new --out, or the same --kimg and overrides as before")


def train_run(run: Run, device: str) -> float:
    """Train `run` from scratch in this process (as alae-train would); writes TRAINED_MARKER; its wall time (s)."""
    if run.run_dir.exists():
        shutil.rmtree(run.run_dir)
    args = train_cli.parse_args(["--config", run.config, "--out", str(run.run_dir), "--device", device,
                                 *run.overrides])
    start = time.perf_counter()
    try:
        ctx = distributed.init(device)
        cfg, run_dir, data, inputs = train_cli.prepare_run(args, ctx)
        train(cfg, run_dir, data, ctx, inputs)
    finally:
        close_logging()
        train_cli.release_run_folders()
    seconds = time.perf_counter() - start
    save_json({"seconds": seconds, "kimg": run.cfg.train.total_kimg}, run.run_dir / TRAINED_MARKER)
    return seconds
