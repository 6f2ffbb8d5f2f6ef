"""alae-compare: train several configs with one budget and several seeds, measure them alike, report.

    alae-compare mnist-vae mnist-aae mnist-alae --out cmp --seeds 3 --kimg 100
    alae-compare mnist-aae-semi runs/old-semi --out cmp --seeds 2 --metrics class_error,knn1 model.latent_dim=4

Each CONFIG_OR_RUN is a config (a built-in name or a YAML path), trained once per seed into
`OUT/runs/NAME-seedS` (train.seed = S, --kimg as train.total_kimg, then the key=value overrides,
as alae-train takes them), or an existing run directory, read as it is. Every system is measured
with the same registry metrics (--metrics) on the same held-out digits (all runs must share one
database and data.holdout). A rerun with the same OUT keeps the finished runs (alae.family.runs)
and the metrics already computed, and trains or measures only what is missing.

Writes into OUT: `report.md` (the systems' table, mean ± std over seeds and wall time; the
classical baselines on the same split; the papers' figures beside ours), `report.png` (samples,
reconstructions and the held-out codes, one row per system), `figures/NAME-codes.png` and
`figures/NAME-losses.png`, `results.json` (every value) and `run.json` (the command).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from alae.cli import RUN_RECORD, ToolError, resolve_device, run_tool
from alae.family.baselines import DIGIT_SIDE, baseline_rows
from alae.family.evaluation import evaluate_run
from alae.family.figure import report_figure
from alae.family.report import report_markdown
from alae.family.runs import Run, plan_runs, train_run
from alae.family.table import SystemRow
from alae.files import create_folder, save_json, save_text
from alae.metrics import check_metric_names
from alae.progress import progress
from alae.training.data import open_images, resolve_data_path

PROG = "alae-compare"
DEFAULT_METRICS = "knn1,linear_svm,class_error,mse_rec,fd_digits10k,elbo"  # parzen_ll is slow: on request
EVALUATIONS = "compare-metrics.json"  # a trained run's metrics, in its run directory


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Train and measure several configs alike; write a report.")
    p.add_argument("inputs", nargs="+", metavar="CONFIG_OR_RUN",
                   help="config names, YAML paths or run directories; key=value items are config overrides")
    p.add_argument("--out", required=True, help="output folder (a rerun with the same folder resumes)")
    p.add_argument("--seeds", type=int, default=3, help="train seeds 0 … N−1 of every config")
    p.add_argument("--kimg", type=float, help="thousands of images each run trains on (train.total_kimg)")
    p.add_argument("--metrics", default=DEFAULT_METRICS, help=f"comma-separated registry metrics ({DEFAULT_METRICS})")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = p.parse_intermixed_args(argv)  # overrides may come before or after the options
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    if args.kimg is not None and args.kimg <= 0:
        p.error(f"--kimg must be positive, got {args.kimg:g}")
    args.overrides = [item for item in args.inputs if "=" in item and not Path(item).exists()]
    args.inputs = [item for item in args.inputs if item not in args.overrides]
    if not args.inputs:
        p.error("no CONFIG_OR_RUN given")
    return args


def open_output(path: str, argv: list[str]) -> Path:
    """OUT, created; a non-empty OUT must be an earlier alae-compare's (its run.json), which it resumes."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ToolError(f"--out {out} exists and is not a folder")
    record = out / RUN_RECORD
    if out.is_dir() and any(out.iterdir()):
        tool = json.loads(record.read_text()).get("tool") if record.is_file() else None
        if tool != PROG:
            raise ToolError(f"--out {out} is not empty and is not an earlier {PROG} output (no {RUN_RECORD} of "
                            f"{PROG}); choose a new folder")
    create_folder(out, "--out")
    save_json({"tool": PROG, "argv": argv, "time": time.strftime("%Y-%m-%d %H:%M:%S")}, record)
    return out


def shared_data(runs: list[Run]) -> tuple[Path, int]:
    """The one (database, data.holdout) of all runs; ToolError naming a run that differs, or for data
    without labels or digits at DIGIT_SIDE px."""
    first = runs[0]
    data, holdout = resolve_data_path(first.cfg, None), first.cfg.data.holdout
    for run in runs[1:]:
        theirs = resolve_data_path(run.cfg, None)
        if (theirs.resolve(), run.cfg.data.holdout) != (data.resolve(), holdout):
            raise ToolError(f"{run.run_dir} uses {theirs} with data.holdout {run.cfg.data.holdout}, and "
                            f"{first.run_dir} uses {data} with {holdout}: a comparison needs one database and split")
    if holdout < 1:
        raise ToolError(f"data.holdout is {holdout}: the comparison measures on held-out images, and there are none")
    images = open_images(data, first.cfg.model.resolution)
    if not images.has_labels:
        raise ToolError(f"{data} has no class labels; the comparison's classifiers need them (MNIST databases have them)")
    if DIGIT_SIDE not in images.resolutions:
        raise ToolError(f"{data} stores no {DIGIT_SIDE} px images, which the baselines read (MNIST databases do)")
    return data, holdout


def system_rows(runs: list[Run], results: list[dict], metrics: list[str]) -> list[SystemRow]:
    """One row per system (in order of first appearance), its values over its runs' seeds."""
    rows: dict[str, SystemRow] = {}
    for run, result in zip(runs, results):
        row = rows.setdefault(run.system, SystemRow(run.system))
        row.seeds.append(run.seed)
        if run.seconds is not None:
            row.seconds.append(run.seconds)
        for metric in metrics:
            if result[metric]["skipped"] is not None:
                row.skipped[metric] = result[metric]["skipped"]
            else:
                row.values.setdefault(metric, []).append(result[metric]["value"])
    return list(rows.values())


def setup_text(runs: list[Run], data: Path, holdout: int, args) -> str:
    total = len(open_images(data, runs[0].cfg.model.resolution))
    budget = f"{args.kimg:g} kimg per run" if args.kimg else "each config's train.total_kimg"
    return (f"Data: `{data}`, {total - holdout} training digits and the last {holdout} held out; every metric on "
            f"the held-out digits. Budget: {budget}; seeds (train.seed): {', '.join(map(str, range(args.seeds)))}"
            + (f"; overrides: `{' '.join(args.overrides)}`" if args.overrides else "") + ".")


def compare(args, argv) -> int:
    metrics = check_metric_names(args.metrics)
    device = str(resolve_device(args.device))
    out = open_output(args.out, argv)
    runs = plan_runs(args.inputs, list(range(args.seeds)), out / "runs", args.kimg, args.overrides)
    data, holdout = shared_data(runs)

    results = []
    bar = progress(None, total=len(runs), desc="compare", unit="run")
    for run in runs:
        bar.set_postfix_str(f"{run.system} seed {run.seed}")
        if not run.finished:
            train_run(run, device)
        cache = run.run_dir / EVALUATIONS if run.config else out / "evaluations" / f"{run.run_dir.name}.json"
        results.append(evaluate_run(run.run_dir, holdout, metrics, data, device, cache))
        bar.update(1)
    bar.close()

    systems = system_rows(runs, results, metrics)
    cluster_ks = [r.cfg.traits.class_head for r in runs if r.cfg.traits.class_head and not r.cfg.data.labelled]
    baselines = baseline_rows(data, holdout, list(range(args.seeds)), [r.cfg.model.latent_dim for r in runs],
                              cluster_ks, [r.cfg.data.labelled for r in runs if r.cfg.data.labelled])
    save_text(report_markdown(systems, baselines, metrics, setup_text(runs, data, holdout, args)),
              out / "report.md")
    first_runs = {}
    for run in runs:
        first_runs.setdefault(run.system, run.run_dir)
    report_figure(list(first_runs.items()), data, holdout, out / "report.png")
    save_json({"metrics": metrics, "runs": [{"system": run.system, "seed": run.seed, "run_dir": str(run.run_dir),
                                             "seconds": run.seconds, "metrics": result}
                                            for run, result in zip(runs, results)],
               "baselines": [{"name": row.name, "seeds": row.seeds, "values": row.values} for row in baselines]},
              out / "results.json")
    print(f"{PROG}: {len(systems)} systems, {len(runs)} runs -> {out / 'report.md'}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    return run_tool(PROG, lambda: compare(args, argv))


if __name__ == "__main__":
    sys.exit(main())
