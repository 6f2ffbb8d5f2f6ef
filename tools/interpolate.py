"""alae-interpolate: a line between two latents, or a bilinear grid between four, in W+.

    alae-interpolate runs/ffhq photos/anna.png photos/ben.png --steps 9 --gif --out line
    alae-interpolate model_157.pth 0 1 2 3 --steps 5 --out square

The endpoints A B [C D] are images (encoded, with --align and --refine as alae-reconstruct) or
seeds (truncated with --psi / --cutoff as alae-generate); with four, A is the top-left corner,
B top-right, C bottom-left, D bottom-right. Every frame uses the same noise maps (those of A),
so only the latents change.

Writes `grid.png`, `frames/NN.png` (row by row), `interpolation.gif` with --gif, and
`latents.npz` (`endpoints` labels, `corners` [2 or 4, L, latent], `wplus` [frames, L, latent]).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from alae.cli import ToolError, add_model_and_output_arguments, prepare_output_dir, run_tool
from alae.datasets import to_uint8
from alae.editing.wplus_edits import interpolate
from alae.files import save_gif, save_image, save_npz
from alae.grids import grid_uint8
from alae.latents.endpoints import resolve_endpoints
from alae.latents.options import (
    add_inversion_arguments,
    add_seed_arguments,
    check_inversion_arguments,
    inversion_setup,
    load_image_model,
)
from alae.latents.synthesis import synthesize

PROG = "alae-interpolate"


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Interpolate between 2 or 4 images or seeds in W+.")
    add_model_and_output_arguments(p)
    p.add_argument("endpoints", nargs="+", metavar="ENDPOINT", help="A B [C D]: images or seeds")
    p.add_argument("--steps", type=int, default=7, help="frames along each side (including both ends)")
    p.add_argument("--gif", action="store_true", help="also write interpolation.gif")
    add_seed_arguments(p)
    add_inversion_arguments(p)
    args = p.parse_args(argv)
    check_inversion_arguments(p, args)
    if args.steps < 2:
        p.error("--steps must be at least 2")
    return args


def run_interpolation(args, argv) -> int:
    weights, cfg, model, device, holdout = load_image_model(args)
    landmarker, settings = inversion_setup(args, device)
    endpoints = resolve_endpoints(args.endpoints, model, args, holdout, landmarker, settings, device, PROG)
    if len(endpoints) not in (2, 4):
        raise ToolError(f"interpolation needs 2 or 4 endpoints; {' '.join(args.endpoints)} gave {len(endpoints)} "
                        f"({', '.join(e.label for e in endpoints)})")
    out = prepare_output_dir(args.out, args.overwrite, PROG, argv)
    corners = torch.stack([e.wplus for e in endpoints])
    path = interpolate(corners, args.steps)
    wplus = path.reshape(-1, *corners.shape[1:])
    frames = synthesize(model, wplus, [endpoints[0].key] * len(wplus), args.noise, device, args.batch)
    for k, frame in enumerate(frames):
        save_image(to_uint8(frame), out / "frames" / f"{k:02d}.png")
    save_image(grid_uint8(frames, args.steps), out / "grid.png")
    if args.gif:
        pictures = [to_uint8(f).permute(1, 2, 0).cpu().numpy() for f in frames]
        save_gif(pictures + pictures[-2:0:-1] if len(corners) == 2 else pictures, out / "interpolation.gif")
    save_npz(out / "latents.npz", endpoints=np.array([e.label for e in endpoints]), corners=corners.cpu().numpy(),
             wplus=wplus.cpu().numpy())
    shape = f"{args.steps} frames" if len(corners) == 2 else f"{args.steps} x {args.steps} grid"
    print(f"{PROG}: {shape} between {', '.join(e.label for e in endpoints)} -> {out}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    return run_tool(PROG, lambda: run_interpolation(args, argv))


if __name__ == "__main__":
    sys.exit(main())
