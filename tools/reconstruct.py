"""alae-reconstruct: encode real images, decode them, measure how close they come back.

    alae-reconstruct runs/demo ../shared/data/ffhq-samples-128 --out R
    alae-reconstruct ffhq-original.pt photos/ --out R --align --refine 200 --lpips ~/weights/vgg16.pt

MODEL is a run directory, an alae checkpoint or an original ALAE .pth. IMAGES are files,
folders (recursive), zip archives or alae LMDBs (their held-out images unless --lmdb-split all).
Each image is fitted to the model's resolution (centre crop with a note if not square,
Lanczos resize), or with --align every face in it is cut out as FFHQ does (alae-align).

Writes into --out: `reconstructions/NAME.png` (and `refined/NAME.png` with --refine,
`aligned/NAME.png` with --align), `grid.png` (originals above reconstructions), `latents.npz`
(`names`, the codes [N, latent] as `w` for ALAE, `mu` for a Gaussian posterior's mean, `z`
for AAE/WAE; with --refine `wplus` [N, layers, latent]), `metrics.csv` (MSE,
PSNR, SSIM per image on [0, 1] pixels, LPIPS with --lpips, before and after refinement, and
the mean) and `summary.json` (settings, means, skipped inputs).
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from alae.cli import ToolError, add_model_and_output_arguments, prepare_output_dir, run_tool, warn
from alae.datasets import to_uint8
from alae.files import save_image, save_json, save_npz, save_text
from alae.grids import row_groups_grid
from alae.latents.image_inputs import gather_images
from alae.latents.inversion import invert_batches
from alae.latents.noise import noise_inputs
from alae.latents.options import (
    add_inversion_arguments,
    check_inversion_arguments,
    inversion_setup,
    load_image_model,
)
from alae.metrics.per_image import mse, psnr, ssim
from alae.model_files.loading import model_fingerprint
from alae.progress import progress
from alae.threads import add_threads_argument, apply_threads

PROG = "alae-reconstruct"
SSIM_MIN_SIZE = 11  # SSIM's 11x11 Gaussian window


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Reconstruct real images with an ALAE: encode, decode, measure.")
    add_model_and_output_arguments(p)
    p.add_argument("images", nargs="+", help="image files, folders, zip archives or alae LMDBs")
    p.add_argument("--grid", type=int, default=32, help="images shown in grid.png")
    p.add_argument("--grid-cols", type=int, default=8, help="columns of grid.png")
    add_inversion_arguments(p)
    add_threads_argument(p)
    args = p.parse_args(argv)
    check_inversion_arguments(p, args)
    for name in ("grid", "grid_cols"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def image_metrics(reconstructions: torch.Tensor, originals: torch.Tensor, lpips) -> dict[str, np.ndarray]:
    """Per-image metrics of images in [−1, 1] (MSE, PSNR, SSIM on [0, 1] pixels; LPIPS if given)."""
    a, b = (reconstructions.clamp(-1, 1) + 1) / 2, (originals + 1) / 2
    values = {"mse": mse(a, b), "psnr": psnr(a, b)}
    if a.shape[-1] >= SSIM_MIN_SIZE:
        values["ssim"] = ssim(a, b)
    if lpips is not None:
        values["lpips"] = lpips(reconstructions.clamp(-1, 1), originals)
    return {k: v.detach().double().cpu().numpy() for k, v in values.items()}


def metrics_table(names: list[str], before: dict[str, np.ndarray], after: dict[str, np.ndarray] | None) -> str:
    """CSV text: one row per image, then the mean; refined columns prefixed `refined_`."""
    columns = dict(before)
    if after is not None:
        columns.update({f"refined_{k}": v for k, v in after.items()})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", *columns])
    for i, name in enumerate(names):
        writer.writerow([name, *(f"{v[i]:.6g}" for v in columns.values())])
    writer.writerow(["mean", *(f"{v.mean():.6g}" for v in columns.values())])
    return buffer.getvalue()


def output_path(folder: Path, name: str) -> Path:
    """Where an input's image goes: its relative name with a .png suffix, under `folder`."""
    relative = PurePosixPath(name)
    return folder.joinpath(*relative.parent.parts, relative.stem + ".png")


def reconstruct(args, argv) -> int:
    apply_threads(args.threads)
    weights, cfg, model, device, holdout = load_image_model(args)
    lod, resolution = cfg.num_lods - 1, cfg.resolution
    refs = gather_images(args.images, resolution, holdout, args.lmdb_split)
    if not refs:
        raise ToolError(f"no images found in {' '.join(args.images)}")
    landmarker, settings = inversion_setup(args, device)
    out = prepare_output_dir(args.out, args.overwrite, PROG, argv)

    names, w_all, wplus_all, skipped, notes = [], [], [], [], []
    before: dict[str, list] = {}
    after: dict[str, list] = {}
    shown: list[list[torch.Tensor]] = [[], [], []]
    start = time.perf_counter()
    bar = progress(None, total=len(refs), desc="reconstruct", unit="img")

    def show(step, losses):
        bar.set_postfix_str(f"refine step {step + 1}/{settings.steps} loss {losses.mean():.4f}")

    for batch in invert_batches(model, refs, args.batch, landmarker, settings, args.noise, device, show):
        skipped += batch.skipped
        notes += batch.notes
        if batch.names:
            noise = noise_inputs(model, lod, args.noise, batch.keys, device)
            with torch.no_grad():
                rows = [batch.images, model.generate(model.broadcast(batch.w), lod, 1.0, noise)]
                if settings.steps:
                    rows.append(model.generate(batch.wplus, lod, 1.0, noise))
            _append(before, image_metrics(rows[1], batch.images, settings.lpips))
            if settings.steps:
                _append(after, image_metrics(rows[2], batch.images, settings.lpips))
                wplus_all.append(batch.wplus.cpu())
            w_all.append(batch.w.cpu())
            for i, name in enumerate(batch.names):
                save_image(to_uint8(rows[1][i]), output_path(out / "reconstructions", name))
                if settings.steps:
                    save_image(to_uint8(rows[2][i]), output_path(out / "refined", name))
                if args.align:
                    save_image(batch.pixels[i], output_path(out / "aligned", name))
            room = args.grid - sum(len(t) for t in shown[0])
            for held, row in zip(shown, rows):
                held.append(row[:room].cpu())
            names += batch.names
        bar.update(batch.inputs)
    bar.close()
    for name, reason in skipped:
        warn(PROG, f"skipped {name}: {reason}")
    if notes:
        warn(PROG, f"centre-cropped {len(notes)} non-square inputs (e.g. {notes[0][0]}: {notes[0][1]}; "
                   f"all in summary.json)")
    if not names:
        raise ToolError(f"none of the {len(refs)} inputs gave an image to reconstruct (see the warnings above)")

    before_all = {k: np.concatenate(v) for k, v in before.items()}
    after_all = {k: np.concatenate(v) for k, v in after.items()} if settings.steps else None
    save_text(metrics_table(names, before_all, after_all), out / "metrics.csv")
    latents = {"names": np.array(names), model.code_name: torch.cat(w_all).numpy()}
    if settings.steps:
        latents["wplus"] = torch.cat(wplus_all).numpy()
    save_npz(out / "latents.npz", **latents)
    save_image(row_groups_grid([torch.cat(r) for r in shown if r], args.grid_cols), out / "grid.png")
    elapsed = time.perf_counter() - start
    means = {k: float(v.mean()) for k, v in before_all.items()}
    refined_means = {k: float(v.mean()) for k, v in after_all.items()} if after_all else None
    save_json({"model": str(weights.path), "model_kind": weights.kind, "fingerprint": model_fingerprint(model),
               "resolution": resolution, "images": len(names), "inputs": len(refs), "refine_steps": settings.steps,
               "lr": settings.lr, "lpips": args.lpips, "noise": args.noise, "device": str(device),
               "seconds": round(elapsed, 2), "mean": means, "refined_mean": refined_means,
               "skipped": dict(skipped), "notes": dict(notes)}, out / "summary.json")
    summary = ", ".join(f"{k} {v:.4g}" + (f" -> {refined_means[k]:.4g}" if refined_means else "")
                        for k, v in means.items())
    print(f"{PROG}: {len(names)} images in {elapsed:.1f} s ({device}); mean {summary}"
          + (f" after {settings.steps} refinement steps" if settings.steps else "")
          + (f"; {len(skipped)} inputs skipped" if skipped else "") + f" -> {out}")
    return 0


def _append(lists: dict[str, list], values: dict[str, np.ndarray]) -> None:
    for k, v in values.items():
        lists.setdefault(k, []).append(v)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    return run_tool(PROG, lambda: reconstruct(args, argv))


if __name__ == "__main__":
    sys.exit(main())
