"""alae-mix: the style-mixing figure: each cell takes its row's styles with its column's on some layers.

    alae-mix runs/ffhq --rows photos/anna.png photos/ben.png --cols 3-6 --layers coarse --out mix
    alae-mix model_157.pth --rows faces/ --cols faces/ --layers 4-7 --align --refine 100 --out mix

Rows and columns are images (encoded, with --align and --refine as alae-reconstruct) or seeds
(truncated with --psi / --cutoff as alae-generate). --layers is coarse, middle, fine (StyleGAN's
split, scaled to the model's number of style layers), all, or indices such as 4-7.

Writes `grid.png` (column sources across the top, row sources down the left, each decoded from
the latents used, and the mixes), `cells/rowRR_colCC.png` and `latents.npz` (`rows`, `cols`
labels, `row_wplus` [R, L, latent], `col_wplus` [C, L, latent], `wplus` [R, C, L, latent],
`layers`).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from alae.cli import ToolError, add_model_and_output_arguments, prepare_output_dir, run_tool
from alae.datasets import to_uint8
from alae.editing.layer_groups import describe_layers, parse_layers
from alae.editing.wplus_edits import mix_styles
from alae.files import save_image, save_npz
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

PROG = "alae-mix"


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Style mixing between images and/or seeds.")
    add_model_and_output_arguments(p)
    p.add_argument("--rows", nargs="+", required=True, help="images or seeds whose styles fill each row")
    p.add_argument("--cols", nargs="+", required=True, help="images or seeds whose styles replace the chosen layers")
    p.add_argument("--layers", default="coarse", help="coarse, middle, fine, all, or indices such as 0-3")
    add_seed_arguments(p)
    add_inversion_arguments(p)
    args = p.parse_args(argv)
    check_inversion_arguments(p, args)
    return args


def mix(args, argv) -> int:
    weights, cfg, model, device, holdout = load_image_model(args)
    if cfg.num_style_layers == 1:
        raise ToolError("this model has one code layer (backbone mlp): it has no style layers to mix")
    layers = parse_layers(args.layers, cfg.num_style_layers)
    landmarker, settings = inversion_setup(args, device)
    rows = resolve_endpoints(args.rows, model, args, holdout, landmarker, settings, device, PROG)
    cols = resolve_endpoints(args.cols, model, args, holdout, landmarker, settings, device, PROG)
    out = prepare_output_dir(args.out, args.overwrite, PROG, argv)
    row_wplus = torch.stack([e.wplus for e in rows])
    col_wplus = torch.stack([e.wplus for e in cols])
    mixed = mix_styles(row_wplus, col_wplus, layers)  # [R, C, L, D]
    keys = [e.key for e in rows for _ in cols]
    cells = synthesize(model, mixed.flatten(0, 1), keys, args.noise, device, args.batch)
    row_images = synthesize(model, row_wplus, [e.key for e in rows], args.noise, device, args.batch)
    col_images = synthesize(model, col_wplus, [e.key for e in cols], args.noise, device, args.batch)
    for k, image in enumerate(cells):
        r, c = divmod(k, len(cols))
        save_image(to_uint8(image), out / "cells" / f"row{r:02d}_col{c:02d}.png")
    blank = torch.full_like(cells[:1], -1.0)
    tiles = [blank, col_images]
    for r in range(len(rows)):
        tiles += [row_images[r:r + 1], cells[r * len(cols):(r + 1) * len(cols)]]
    save_image(grid_uint8(torch.cat(tiles), len(cols) + 1), out / "grid.png")
    save_npz(out / "latents.npz", rows=np.array([e.label for e in rows]), cols=np.array([e.label for e in cols]),
             row_wplus=row_wplus.cpu().numpy(), col_wplus=col_wplus.cpu().numpy(), wplus=mixed.cpu().numpy(),
             layers=np.array(layers))
    print(f"{PROG}: {len(rows)} x {len(cols)} mixes, the columns' styles on layers {describe_layers(layers)} of "
          f"0-{cfg.num_style_layers - 1} -> {out}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    return run_tool(PROG, lambda: mix(args, argv))


if __name__ == "__main__":
    sys.exit(main())
