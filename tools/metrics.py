"""alae-metrics: FID, KID, PPL, reconstruction, code, likelihood and digit metrics of a model, recorded in metrics.jsonl.

    alae-metrics runs/ffhq --metrics fid50k_full,ppl_wend --mode legacy_tensorflow
    alae-metrics model_157.pth --data /data/ffhq-lmdb --metrics fid_rec50k,lpips_rec10k --out results/
    alae-metrics runs/mnist-vae --metrics knn1,linear_svm,parzen_ll,elbo,elbo_iw,fd_digits10k --holdout 500
    torchrun --nproc_per_node=8 -m alae.tools.metrics runs/ffhq --metrics fid50k_full,kid50k_full

MODEL is a run directory, an alae checkpoint or an original ALAE .pth; the networks are its EMA
networks at full resolution. --data defaults to the model's data.path ('lfw' is the demo
database), and --holdout, for a training checkpoint measured on its own data, to its
data.holdout (the images its training never saw). A metric the model or data cannot give (a
VAE's ELBO of another model, held-out images or labels the data lacks) is a one-line error
before anything is measured, not a row without a value. Metric names and protocols: docs/METRICS.md (`alae.metrics`). Each result is printed
as one line and appended as a JSON line to RUN/metrics.jsonl, where RUN is --out, else the run
directory MODEL is or whose checkpoints/ holds MODEL; for other models without --out the
results are printed only. Under torchrun the ranks share the images; rank 0 prints and writes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import alae.distributed as distributed
from alae.cli import MODEL_HELP, ToolError, resolve_device, run_tool
from alae.threads import add_threads_argument, apply_threads
from alae.datasets.builder import default_workers
from alae.files import create_folder
from alae.metrics import MODES, RESULTS_FILE, append_result, check_metric_names, compute_metrics
from alae.model_files.loading import Weights, networks_from_weights, read_weights
from alae.training.data import resolve_data_path

PROG = "alae-metrics"


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Measure a model: FID, KID, PPL, reconstruction, code, "
                                             "likelihood and digit metrics.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--metrics", required=True,
                   help="comma-separated names, e.g. fid50k_full,kid50k,fid_rec50k,lpips_rec10k,mse_rec,ppl_wend, "
                        "knn1,linear_svm,parzen_ll,elbo,elbo_iw,fd_digits10k")
    p.add_argument("--data", help="real images: an alae LMDB or 'lfw' (default: the model's data.path)")
    p.add_argument("--out", metavar="RUN", help="folder whose metrics.jsonl the results are appended to "
                                                "(default: the model's run directory)")
    p.add_argument("--inception", metavar="PATH", help="inception-2015-12-05.pt (default: $ALAE_INCEPTION, the cache)")
    p.add_argument("--lpips", metavar="PATH", help="LPIPS weights: NVlabs vgg16.pt or a folder with torchvision's "
                                                   "vgg16 and LPIPS' vgg.pth (default: $ALAE_LPIPS, the cache)")
    p.add_argument("--mode", choices=MODES, default="clean",
                   help="clean-fid feature mode; legacy_tensorflow compares with StyleGAN's and the paper's numbers")
    p.add_argument("--mixing", action="store_true",
                   help="style mixing on for generated images, decided once per 16 images as the original "
                        "ALAE's FID protocol (probability 0.9)")
    p.add_argument("--holdout", type=int, help="the last N images of --data are held out: reconstruction "
                                               "metrics use them (without a holdout: all images), the code, "
                                               "likelihood and digit metrics need them; default: a training "
                                               "checkpoint's data.holdout when measured on its own data")
    p.add_argument("--batch", type=int, default=32, help="images per forward pass per process")
    p.add_argument("--seed", type=int, default=0, help="base seed of latents, noise and KID subsets")
    p.add_argument("--workers", type=int, default=default_workers(), help="processes reading the database")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    add_threads_argument(p)
    args = p.parse_args(argv)
    if args.batch < 1:
        p.error("--batch must be at least 1")
    if args.workers < 0:
        p.error("--workers must be >= 0")
    return args


def results_folder(out: str | None, model: str, checkpoint: Path) -> Path | None:
    """--out, else the run directory of MODEL (MODEL itself, or the folder above its checkpoints/), else None."""
    if out:
        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise ToolError(f"--out {folder} exists and is not a folder")
        return create_folder(folder, "--out")  # before anything is measured: a read-only --out fails now
    if Path(model).is_dir():
        return Path(model)
    if checkpoint.parent.name == "checkpoints" and (checkpoint.parent.parent / "config.yaml").is_file():
        return checkpoint.parent.parent
    return None


def run_holdout(weights: Weights, data: str | None) -> int | None:
    """The data.holdout of a training checkpoint (it has a schedule position) measured on the data
    it trained on (no --data, or --data naming its data.path); None otherwise."""
    if weights.progress is None or not weights.config.data.holdout:
        return None
    own = weights.config.data.path
    if data is not None and data != own and Path(data).expanduser().resolve() != Path(own).expanduser().resolve():
        return None
    return weights.config.data.holdout


def measure(args) -> int:
    names = check_metric_names(args.metrics)
    if args.holdout is not None and args.holdout < 1:
        raise ToolError(f"--holdout must be at least 1, got {args.holdout}")
    resolve_device(args.device)  # a clear error for --device cuda without a GPU
    apply_threads(args.threads)
    ctx = distributed.init(args.device)
    try:
        weights = read_weights(args.model)
        folder = results_folder(args.out, args.model, weights.path)
        data = resolve_data_path(weights.config, args.data)
        holdout = args.holdout if args.holdout is not None else run_holdout(weights, args.data)
        _, model = networks_from_weights(weights, ctx.device, verbose=ctx.is_main)
        kimg = weights.progress["images_seen"] / 1000 if weights.progress else None
        results = compute_metrics(names, model, data, ctx=ctx, holdout=holdout, seed=args.seed,
                                  batch=args.batch, mixing=args.mixing, mode=args.mode, inception=args.inception,
                                  lpips=args.lpips, workers=args.workers, model_path=weights.path, kimg=kimg,
                                  skip=False)
        if ctx.is_main:
            for result in results:
                print(f"{PROG}: {result.summary()}")
                if folder is not None:
                    append_result(folder / RESULTS_FILE, result)
            print(f"{PROG}: -> {folder / RESULTS_FILE}" if folder is not None else
                  f"{PROG}: results not recorded (pass --out RUN to append them to RUN/{RESULTS_FILE})")
    finally:
        distributed.shutdown()
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    return run_tool(PROG, lambda: measure(args))


if __name__ == "__main__":
    sys.exit(main())
