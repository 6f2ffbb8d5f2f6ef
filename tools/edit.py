"""alae-edit: move real faces along an attribute direction and decode them.

    alae-edit runs/ffhq photos/ --direction smile.npz --strengths -3:3:7 --out edits
    alae-edit model_157.pth me.jpg --direction age.npz --layers 0-7 --align --refine 200 --gif --out edits
    alae-edit runs/ffhq me.png --direction smile.npz=1.5 --direction age.npz=-0.5 --strengths=1 --out edits

Each image is encoded (with --align and --refine as alae-reconstruct) to W+; for each strength s
the chosen style layers move by s × the direction's scale along its unit vector (so strengths
mean the same for every direction file), the other layers keep the image's own latents. Several
`--direction FILE=WEIGHT` combine into one offset Σ weight × scale × unit vector that the
strengths then multiply (alae-studio shows the command that reproduces its sliders this way).

Writes `grid.png` (one row per image: the input, then each strength), `edits/NAME/KK_S.png`
(one per edit), `gifs/NAME.gif` with --gif, `latents.npz` (`names`, `strengths`, `layers`,
`source_wplus` [N, L, latent], `wplus` [N, S, L, latent]) and `summary.json`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import PurePosixPath

import numpy as np
import torch

from alae.cli import ToolError, add_model_and_output_arguments, prepare_output_dir, run_tool, warn
from alae.datasets import to_uint8
from alae.editing.directions import Direction, compatibility_warning, edit_step, load_direction
from alae.editing.layer_groups import describe_layers, parse_layers
from alae.editing.wplus_edits import apply_direction
from alae.files import save_gif, save_image, save_json, save_npz
from alae.grids import grid_uint8
from alae.latents.image_inputs import gather_images
from alae.latents.inversion import invert_batches
from alae.latents.options import (
    add_inversion_arguments,
    check_inversion_arguments,
    inversion_setup,
    load_image_model,
)
from alae.latents.synthesis import synthesize
from alae.model_files.loading import model_fingerprint
from alae.progress import progress

PROG = "alae-edit"


def parse_strengths(text: str) -> list[float]:
    """'-3:3:7' → 7 evenly spaced strengths from −3 to 3; '-2,0,1.5' → that list."""
    try:
        if ":" in text:
            low, high, count = text.split(":")
            if int(count) < 1:
                raise ValueError
            return np.linspace(float(low), float(high), int(count)).tolist()
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ToolError(f"--strengths {text!r}: give LOW:HIGH:COUNT (e.g. -3:3:7) or a list such as -2,0,2") from None


def parse_direction(text: str) -> tuple[str, float]:
    """'smile.npz' → ('smile.npz', 1.0); 'smile.npz=-1.5' → ('smile.npz', -1.5)."""
    path, sep, weight = text.rpartition("=")
    if not sep:
        return text, 1.0
    try:
        return path, float(weight)
    except ValueError:
        raise ToolError(f"--direction {text!r}: give FILE or FILE=WEIGHT (e.g. smile.npz=1.5)") from None


def describe_directions(weighted: list[tuple[Direction, float]]) -> str:
    """'Smiling (fit, scale 0.8)' for one direction of weight 1, else 'Smiling×1.5 + pc3×-2'."""
    if len(weighted) == 1 and weighted[0][1] == 1:
        d = weighted[0][0]
        return f"{d.attribute} ({d.method}, scale {d.scale:.4g})"
    return " + ".join(f"{d.attribute}×{weight:g}" for d, weight in weighted)


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Edit real images along a direction in W.")
    add_model_and_output_arguments(p)
    p.add_argument("images", nargs="+", help="image files, folders, zip archives or alae LMDBs")
    p.add_argument("--direction", required=True, action="append", metavar="FILE[=WEIGHT]",
                   help="a direction file (alae-directions); several, with weights, add up to one offset")
    p.add_argument("--strengths", default="-3:3:7", help="in units of the direction's scale: LOW:HIGH:COUNT or a list")
    p.add_argument("--layers", default="all", help="style layers to move: all, coarse, middle, fine, or e.g. 0-7")
    p.add_argument("--gif", action="store_true", help="also write an animated GIF per image")
    add_inversion_arguments(p)
    # a negative range such as -3:3:7 would read as an option: bind it to --strengths first
    argv = list(argv)
    for i, token in enumerate(argv[:-1]):
        if token == "--strengths" and argv[i + 1].startswith("-"):
            argv[i:i + 2] = [f"--strengths={argv[i + 1]}"]
            break
    args = p.parse_args(argv)
    check_inversion_arguments(p, args)
    return args


def edit(args, argv) -> int:
    weights, cfg, model, device, holdout = load_image_model(args)
    weighted = []
    for text in args.direction:
        path, weight = parse_direction(text)
        direction = load_direction(path)
        warning = compatibility_warning(direction, model_fingerprint(model), cfg.latent_dim)
        if warning:
            warn(PROG, warning)
        weighted.append((direction, weight))
    strengths = parse_strengths(args.strengths)
    layers = parse_layers(args.layers, cfg.num_style_layers)
    refs = gather_images(args.images, cfg.resolution, holdout, args.lmdb_split)
    if not refs:
        raise ToolError(f"no images found in {' '.join(args.images)}")
    landmarker, settings = inversion_setup(args, device)
    out = prepare_output_dir(args.out, args.overwrite, PROG, argv)
    step = torch.as_tensor(edit_step(weighted), dtype=torch.float32, device=device)

    names, sources, edited, grid_rows = [], [], [], []
    bar = progress(None, total=len(refs), desc=PROG, unit="img")
    for batch in invert_batches(model, refs, args.batch, landmarker, settings, args.noise, device):
        for name, reason in batch.skipped:
            warn(PROG, f"skipped {name}: {reason}")
        if batch.names:
            moved = apply_direction(batch.wplus, step, strengths, layers)  # [n, S, L, D]
            keys = [k for k in batch.keys for _ in strengths]
            images = synthesize(model, moved.flatten(0, 1), keys, args.noise, device, args.batch)
            images = images.view(len(batch.names), len(strengths), *images.shape[1:])
            for i, name in enumerate(batch.names):
                folder = out / "edits" / PurePosixPath(name).with_suffix("").as_posix()
                frames = [to_uint8(im) for im in images[i]]
                for k, (s, frame) in enumerate(zip(strengths, frames)):
                    save_image(frame, folder / f"{k:02d}_{s:+.2f}.png")
                if args.gif:
                    pictures = [f.permute(1, 2, 0).cpu().numpy() for f in frames]
                    save_gif(pictures + pictures[-2:0:-1], out / "gifs" / f"{PurePosixPath(name).with_suffix('')}.gif")
                grid_rows.append(torch.cat([batch.images[i:i + 1], images[i]]).cpu())
            names += batch.names
            sources.append(batch.wplus.cpu())
            edited.append(moved.cpu())
        bar.update(batch.inputs)
    bar.close()
    if not names:
        raise ToolError(f"none of the {len(refs)} inputs gave an image to edit (see the warnings above)")
    save_image(grid_uint8(torch.cat(grid_rows), len(strengths) + 1), out / "grid.png")
    save_npz(out / "latents.npz", names=np.array(names), strengths=np.array(strengths), layers=np.array(layers),
             source_wplus=torch.cat(sources).numpy(), wplus=torch.cat(edited).numpy())
    save_json({"model": str(weights.path), "fingerprint": model_fingerprint(model),
               "directions": [{"file": d.name, "weight": weight, "method": d.method, "attribute": d.attribute,
                               "scale": d.scale} for d, weight in weighted],
               "strengths": strengths, "layers": layers, "refine_steps": settings.steps, "noise": args.noise,
               "images": names}, out / "summary.json")
    print(f"{PROG}: {len(names)} images x {len(strengths)} strengths of {describe_directions(weighted)} "
          f"on style layers {describe_layers(layers)} -> {out}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    return run_tool(PROG, lambda: edit(args, argv))


if __name__ == "__main__":
    sys.exit(main())
