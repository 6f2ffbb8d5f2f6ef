"""alae-classify: the class a model's class head gives each image.

    alae-classify runs/mnist-aae-semi digits/ --out C
    alae-classify runs/mnist-aae-cluster ~/.cache/alae/mnist-digits-32px --lmdb-split all --out C

MODEL is a run directory or checkpoint of a model with a class head (an AAE with
`aae.categories` and `aae.categories_from=encoder`: mnist-aae-semi, mnist-aae-cluster).
IMAGES are files, folders (recursive), zip archives or alae LMDBs (their held-out images unless
--lmdb-split all), each fitted to the model's resolution and channels as alae-reconstruct fits them.

Writes into --out: `predictions.csv` (file, class, probability: the most probable category
and its probability in [0, 1], then `p0` … `p{K−1}`, every category's probability, summing to
1), `classes/K.png` for every category K that some image falls in (those images in a grid,
most probable first, at most --per-class of them) and `summary.json` (counts per category).
A semi-supervised model's categories are the database's classes; a clustering model's are
cluster numbers (alae-metrics' class_error names them by the majority label of the training images).
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import time

import torch

from alae.cli import (
    ToolError,
    add_model_and_output_arguments,
    prepare_output_dir,
    resolve_device,
    run_tool,
    warn,
)
from alae.datasets import to_model_range
from alae.files import save_image, save_json, save_text
from alae.grids import grid_uint8
from alae.latents.image_inputs import gather_images, load_images
from alae.latents.options import add_lmdb_arguments
from alae.model_files.loading import networks_from_weights, read_weights
from alae.progress import progress
from alae.threads import add_threads_argument, apply_threads

PROG = "alae-classify"


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Classify images with a model's class head.")
    add_model_and_output_arguments(p)
    p.add_argument("images", nargs="+", help="image files, folders, zip archives or alae LMDBs")
    p.add_argument("--batch", type=int, default=64, help="images per batch")
    p.add_argument("--per-class", type=int, default=64, help="images shown in each classes/K.png")
    p.add_argument("--columns", type=int, default=8, help="columns of each classes/K.png")
    add_lmdb_arguments(p)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_threads_argument(p)
    args = p.parse_args(argv)
    for name in ("batch", "per_class", "columns"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def predictions_table(names: list[str], probabilities: torch.Tensor) -> str:
    """CSV text: file, class, probability, p0 … p{K−1}, one row per image (probabilities [N, K])."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "class", "probability", *(f"p{k}" for k in range(probabilities.shape[1]))])
    best, classes = probabilities.max(dim=1)
    for name, k, p, row in zip(names, classes.tolist(), best.tolist(), probabilities.tolist()):
        writer.writerow([name, k, f"{p:.6f}", *(f"{v:.6f}" for v in row)])
    return buffer.getvalue()


def classify(args, argv) -> int:
    apply_threads(args.threads)
    device = resolve_device(args.device)
    weights = read_weights(args.model)
    cfg, model = networks_from_weights(weights, device)
    if not model.class_head:
        raise ToolError(f"{args.model} has no class head (objective {model.objective}, no aae.categories from the "
                        f"encoder); alae-classify needs one, e.g. a run of mnist-aae-semi or mnist-aae-cluster")
    holdout = args.holdout if args.holdout is not None else weights.config.data.holdout
    refs = gather_images(args.images, cfg.resolution, holdout, args.lmdb_split)
    if not refs:
        raise ToolError(f"no images found in {' '.join(args.images)}")
    out = prepare_output_dir(args.out, args.overwrite, PROG, argv)

    start = time.perf_counter()
    names, images, probabilities, skipped = [], [], [], []
    bar = progress(None, total=len(refs), desc="classify", unit="img")
    for first in range(0, len(refs), args.batch):
        loaded = load_images(refs[first:first + args.batch], cfg.resolution, channels=model.image_channels)
        skipped += loaded.skipped
        if loaded.names:
            x = to_model_range(loaded.pixels.to(device))
            with torch.no_grad():
                probabilities.append(model.classify(x).double().cpu())
            names += loaded.names
            images.append(loaded.pixels)
        bar.update(len(refs[first:first + args.batch]))
    bar.close()
    for name, reason in skipped:
        warn(PROG, f"skipped {name}: {reason}")
    if not names:
        raise ToolError(f"none of the {len(refs)} inputs could be read (see the warnings above)")

    probabilities, images = torch.cat(probabilities), torch.cat(images)
    save_text(predictions_table(names, probabilities), out / "predictions.csv")
    best, classes = probabilities.max(dim=1)
    counts = {}
    for k in classes.unique().tolist():
        members = (classes == k).nonzero().flatten()
        shown = members[best[members].argsort(descending=True)][:args.per_class]
        save_image(grid_uint8(to_model_range(images[shown]), args.columns), out / "classes" / f"{k}.png")
        counts[str(k)] = len(members)
    elapsed = time.perf_counter() - start
    save_json({"model": str(weights.path), "categories": model.class_head,
               "categories_are_classes": model.labelled_classes, "images": len(names), "inputs": len(refs),
               "counts": counts, "device": str(device), "seconds": round(elapsed, 2), "skipped": dict(skipped)},
              out / "summary.json")
    print(f"{PROG}: {len(names)} images into {len(counts)} of {model.class_head} categories in {elapsed:.1f} s "
          f"({device})" + (f"; {len(skipped)} inputs skipped" if skipped else "") + f" -> {out}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    return run_tool(PROG, lambda: classify(args, argv))


if __name__ == "__main__":
    sys.exit(main())
