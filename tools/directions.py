"""alae-directions: attribute directions in W, four ways, as direction files (.npz).

    alae-directions fit MODEL --images celeba/ --labels list_attr_celeba.txt --attribute Smiling --out smile.npz
    alae-directions pca MODEL --num 20 --out pca/                  # GANSpace: principal axes of w = F(z)
    alae-directions sefa MODEL --layers 0-7 --num 20 --out sefa/   # SeFa: eigenvectors of AᵀA, seconds, no data
    alae-directions import principal_directions/direction_1.npy --model MODEL --negate --out smile.npz

A direction file holds a unit vector in W, its scale (the std of w = F(z) along it, so edit
strengths mean the same for every direction) and metadata: method, attribute, the model's
fingerprint and the fit statistics (alae.editing.directions). `--orthogonal-to OTHER.npz ...` projects
other directions out first (InterFaceGAN's conditional manipulation). `fit` encodes the
labelled images with E (`--align` cuts the faces out first) and fits a logistic regression on
their w; it reports the held-out accuracy and warns when it is near chance.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from alae.cli import MODEL_HELP, ToolError, prepare_output_dir, resolve_device, run_tool, warn
from alae.editing.directions import (
    PCA_SAMPLES,
    SCALE_SAMPLES,
    Direction,
    fit_direction,
    import_direction,
    load_direction,
    mapped_samples,
    orthogonalize,
    pca_direction_set,
    save_direction,
    scale_along,
    sefa_direction_set,
)
from alae.editing.label_files import match_labels, read_labels
from alae.editing.layer_groups import describe_layers, parse_layers
from alae.files import save_json
from alae.latents.image_inputs import ImageRef, gather_images
from alae.latents.inversion import invert_batches
from alae.latents.options import (
    add_inversion_arguments,
    check_inversion_arguments,
    inversion_setup,
    load_image_model,
)
from alae.model_files.loading import load_networks, model_fingerprint
from alae.progress import progress

PROG = "alae-directions"


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Find attribute directions in W.")
    sub = p.add_subparsers(dest="method", required=True)

    def common(q, out_help):
        q.add_argument("--out", required=True, help=out_help)
        q.add_argument("--overwrite", action="store_true", help="replace an earlier output")
        q.add_argument("--orthogonal-to", nargs="+", default=[], metavar="DIRECTION",
                       help="direction files to project out (conditional manipulation)")
        q.add_argument("--scale-samples", type=int, default=SCALE_SAMPLES, help="F samples measuring the scale")
        q.add_argument("--seed", type=int, default=0, help="seed of the F samples and of the fit's split")

    fit = sub.add_parser("fit", help="a linear classifier in W on labelled images")
    fit.add_argument("model", help=MODEL_HELP)
    fit.add_argument("--images", nargs="+", required=True, help="labelled images: files, folders, zips, LMDBs")
    fit.add_argument("--labels", required=True, help="CelebA list_attr_celeba.txt, or a CSV (name, attributes...)")
    fit.add_argument("--attribute", required=True, help="the label column to fit")
    fit.add_argument("--holdout-fraction", type=float, default=0.2, help="labelled images kept out for accuracy")
    common(fit, "direction file to write (.npz)")
    add_inversion_arguments(fit, refine=False)
    fit.set_defaults(lmdb_split="all")

    pca = sub.add_parser("pca", help="principal components of w = F(z) (GANSpace)")
    pca.add_argument("model", help=MODEL_HELP)
    pca.add_argument("--num", type=int, default=20, help="components")
    pca.add_argument("--samples", type=int, default=PCA_SAMPLES, help="F samples")
    pca.add_argument("--device", default="auto")
    common(pca, "output folder (one pcNN.npz per component)")

    sefa = sub.add_parser("sefa", help="closed-form factorization of the style layers (SeFa)")
    sefa.add_argument("model", help=MODEL_HELP)
    sefa.add_argument("--layers", default="all", help="style layers, e.g. 0-7, coarse, all")
    sefa.add_argument("--num", type=int, default=20, help="directions")
    sefa.add_argument("--normalize-rows", action="store_true", help="unit-norm rows of A first (SeFa's code)")
    sefa.add_argument("--device", default="auto")
    common(sefa, "output folder (one sefaNN.npz per direction)")

    imp = sub.add_parser("import", help="an original ALAE principal_directions/direction_*.npy")
    imp.add_argument("file", help="the .npy (a raw SVM coefficient)")
    imp.add_argument("--model", required=True, help="the model whose F measures the scale: " + MODEL_HELP)
    imp.add_argument("--negate", action="store_true",
                     help="flip the sign (the original's vectors point toward the attribute's absence)")
    imp.add_argument("--attribute", help="a name for it (default: the file's name)")
    imp.add_argument("--device", default="auto")
    common(imp, "direction file to write (.npz)")

    args = p.parse_args(argv)
    if args.method == "fit":
        check_inversion_arguments(fit, args)
    if getattr(args, "num", 1) < 1:
        p.error("--num must be at least 1")
    for name in ("samples", "scale_samples"):
        if getattr(args, name, 2) < 2:
            p.error(f"--{name.replace('_', '-')} must be at least 2")
    return args


def finish(vector: np.ndarray, args, model) -> tuple[np.ndarray, float, dict]:
    """Project out --orthogonal-to, then measure the scale on F's samples."""
    meta = {}
    if args.orthogonal_to:
        others = [load_direction(path) for path in args.orthogonal_to]
        vector = orthogonalize(vector, [d.vector for d in others])
        meta["orthogonal_to"] = [d.name for d in others]
    return vector, scale_along(vector, mapped_samples(model, args.scale_samples, args.seed)), meta


def output_file(args) -> Path:
    out = Path(args.out)
    if out.suffix != ".npz":
        raise ToolError(f"--out {out}: a direction file ends in .npz")
    if out.exists() and not args.overwrite:
        raise ToolError(f"{out} exists; pass --overwrite to replace it")
    return out


def labelled_refs(args, resolution: int, holdout: int) -> tuple[list[ImageRef], list[bool], dict]:
    """The images that have a label (in input order), their labels, and the matching statistics."""
    labels = read_labels(args.labels, args.attribute)
    refs = gather_images(args.images, resolution, holdout, args.lmdb_split)
    matched, unmatched = match_labels(labels, [ref.name for ref in refs])
    if unmatched:
        warn(PROG, f"{len(unmatched)} of {len(labels)} label names match no image (e.g. {', '.join(unmatched[:3])})")
    if len(matched) < len(refs):
        warn(PROG, f"{len(refs) - len(matched)} of {len(refs)} images have no {args.attribute} label")
    if not matched:
        raise ToolError(f"no image under {' '.join(args.images)} has a label in {args.labels}")
    stats = {"labels": str(args.labels), "labelled_names": len(labels), "unmatched_names": len(unmatched),
             "images": len(refs), "unlabelled_images": len(refs) - len(matched)}
    return [refs[i] for i, _ in matched], [label for _, label in matched], stats


def run_fit(args, argv) -> int:
    out = output_file(args)
    weights, cfg, model, device, holdout = load_image_model(args)
    refs, labels, stats = labelled_refs(args, cfg.resolution, holdout)
    landmarker, settings = inversion_setup(args, device)
    latents, targets = [], []
    bar = progress(None, total=len(refs), desc="encode", unit="img")
    for batch in invert_batches(model, refs, args.batch, landmarker, settings, "const", device):
        for name, reason in batch.skipped:
            warn(PROG, f"skipped {name}: {reason}")
        latents.append(batch.w.cpu().double().numpy())
        targets += [labels[i] for i in batch.origins]  # with --align, every face of a photo keeps its label
        bar.update(batch.inputs)
    bar.close()
    vector, fit_stats = fit_direction(np.concatenate(latents), np.array(targets), args.seed, args.holdout_fraction)
    vector, scale, meta = finish(vector, args, model)
    accuracy, chance = fit_stats["holdout_accuracy"], fit_stats["chance"]
    if fit_stats["near_chance"]:
        warn(PROG, f"held-out accuracy {accuracy:.3f} is near chance ({chance:.3f}): the direction may mean little")
    if not fit_stats["converged"]:
        warn(PROG, "the logistic regression did not converge")
    direction = Direction(vector, scale, "fit", args.attribute, model_fingerprint(model), {**stats, **fit_stats, **meta})
    save_direction(direction, out)
    print(f"{PROG}: {args.attribute}: {fit_stats['count']} images ({fit_stats['positives']} with, "
          f"{fit_stats['negatives']} without), held-out accuracy {accuracy:.3f} (chance {chance:.3f}), scale "
          f"{scale:.4g} -> {out}")
    return 0


def save_set(directions: list[Direction], prefix: str, args, model, out: Path) -> list[dict]:
    """Write pca/sefa directions as PREFIXkk.npz (with --orthogonal-to projected out and the scale
    measured again); their summary rows."""
    summary = []
    for k, direction in enumerate(directions):
        if args.orthogonal_to:
            vector, scale, meta = finish(direction.vector, args, model)
            direction = Direction(vector, scale, direction.method, direction.attribute, direction.fingerprint,
                                  {**direction.stats, **meta})
        save_direction(direction, out / f"{prefix}{k:02d}.npz")
        summary.append({"file": f"{prefix}{k:02d}.npz", **direction.stats, "scale": direction.scale})
    return summary


def run_pca(args, argv) -> int:
    device = resolve_device(args.device)
    cfg, model = load_networks(args.model, device)
    out = prepare_output_dir(args.out, args.overwrite, PROG, argv)
    directions = pca_direction_set(model, args.num, args.samples, args.seed, model_fingerprint(model))
    save_json({"method": "pca", "directions": save_set(directions, "pc", args, model, out)}, out / "summary.json")
    explained = sum(d.stats["explained_variance_ratio"] for d in directions)
    print(f"{PROG}: {len(directions)} principal components of {args.samples} w samples (they explain "
          f"{explained:.1%} of the variance) -> {out}")
    return 0


def run_sefa(args, argv) -> int:
    device = resolve_device(args.device)
    cfg, model = load_networks(args.model, device)
    layers = parse_layers(args.layers, cfg.num_style_layers)
    out = prepare_output_dir(args.out, args.overwrite, PROG, argv)
    directions = sefa_direction_set(model, layers, args.num, args.scale_samples, args.seed, model_fingerprint(model),
                                    args.normalize_rows)
    save_json({"method": "sefa", "layers": layers, "directions": save_set(directions, "sefa", args, model, out)},
              out / "summary.json")
    print(f"{PROG}: {len(directions)} SeFa directions of style layers {describe_layers(layers)} -> {out}")
    return 0


def run_import(args, argv) -> int:
    out = output_file(args)
    device = resolve_device(args.device)
    cfg, model = load_networks(args.model, device)
    vector, stats = import_direction(args.file, args.negate, cfg.latent_dim)
    vector, scale, meta = finish(vector, args, model)
    attribute = args.attribute or Path(args.file).stem
    save_direction(Direction(vector, scale, "import", attribute, model_fingerprint(model), {**stats, **meta}), out)
    print(f"{PROG}: imported {args.file} (norm {stats['original_norm']:.4g}"
          + (", negated" if args.negate else ", sign kept: the original's points toward the attribute's absence")
          + f"), scale {scale:.4g} -> {out}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    run = {"fit": run_fit, "pca": run_pca, "sefa": run_sefa, "import": run_import}[args.method]
    return run_tool(PROG, lambda: run(args, argv))


if __name__ == "__main__":
    sys.exit(main())
