"""alae-generate: images from seeds, with truncation.

    alae-generate runs/ffhq --seeds 0-31 --out samples
    alae-generate model_157.pth --seeds 0-7 --psi 1 --noise const --out samples

z for seed s is drawn on the CPU (`numpy.random.RandomState(s).randn(latent)`, as in
StyleGAN2-ADA), so a seed gives the same image on CPU and GPU up to float rounding. Truncation
moves the first `--cutoff` style layers toward the model's running mean of w:
w_avg + psi·(w − w_avg); `--psi 1` means none. Noise: `random` draws maps per seed, `const`
uses one fixed set for every seed, `none` turns noise off, `deterministic` is the original
ALAE generator's noise=False.

z comes from the model's prior (N(0, I) but for AAE and WAE models trained with another;
alae.latents.seeds). Writes `seedNNNN.png` per seed, `grid.png` and `latents.npz` (`seeds`,
`z` [N, latent], and for ALAE models `w` = F(z) [N, latent] before truncation; the other
objectives decode z itself).
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from alae.cli import (
    ToolError,
    add_model_and_output_arguments,
    parse_int_ranges,
    prepare_output_dir,
    resolve_device,
    run_tool,
)
from alae.datasets import to_model_range, to_uint8
from alae.files import save_image, save_npz
from alae.grids import grid_uint8
from alae.latents.noise import NOISE_MODES, noise_inputs
from alae.latents.seeds import latents_for_seeds
from alae.model_files.loading import load_networks
from alae.progress import progress

PROG = "alae-generate"


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Generate images from seeds.")
    add_model_and_output_arguments(p)
    p.add_argument("--seeds", required=True, help="seeds, e.g. 0-31 or 1,5,9")
    p.add_argument("--psi", type=float, default=0.7, help="truncation psi (1 = no truncation; original: 0.7)")
    p.add_argument("--cutoff", type=int, default=8, help="style layers truncated (original: 8)")
    p.add_argument("--noise", choices=NOISE_MODES, default="random", help="generator noise")
    p.add_argument("--batch", type=int, default=8, help="images per batch")
    p.add_argument("--grid-cols", type=int, help="columns of grid.png (default: about the square root)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = p.parse_args(argv)
    if args.batch < 1:
        p.error("--batch must be at least 1")
    if args.cutoff < 0:
        p.error("--cutoff must be >= 0")
    return args


def generate(args, argv) -> int:
    seeds = parse_int_ranges(args.seeds, "--seeds")
    device = resolve_device(args.device)
    cfg, model = load_networks(args.model, device)
    if args.psi < 0:
        raise ToolError(f"--psi must be >= 0, got {args.psi}")
    out = prepare_output_dir(args.out, args.overwrite, PROG, argv)
    lod = cfg.num_lods - 1
    z = latents_for_seeds(seeds, model.prior)
    ws, images = [], []
    start = time.perf_counter()
    with torch.no_grad():
        for first in progress(range(0, len(seeds), args.batch), total=math.ceil(len(seeds) / args.batch),
                              desc=PROG, unit="batch"):
            chunk = seeds[first:first + args.batch]
            w = model.map(z[first:first + len(chunk)].to(device))
            styles = model.broadcast(w)
            if args.psi != 1:
                styles = model.truncate(styles, args.psi, args.cutoff)
            batch = to_uint8(model.generate(styles, lod, 1.0, noise_inputs(model, lod, args.noise, chunk, device)))
            for seed, image in zip(chunk, batch):
                save_image(image, out / f"seed{seed:04d}.png")
            ws.append(w.cpu())
            images.append(batch.cpu())
    codes = {"w": torch.cat(ws).numpy()} if model.F is not None else {}  # without a mapping, w = z
    save_npz(out / "latents.npz", seeds=np.array(seeds), z=z.numpy(), **codes)
    columns = args.grid_cols or max(1, round(math.sqrt(len(seeds))))
    save_image(grid_uint8(to_model_range(torch.cat(images)), columns), out / "grid.png")
    print(f"{PROG}: {len(seeds)} images at {cfg.resolution} px in {time.perf_counter() - start:.1f} s ({device}), "
          f"psi {args.psi:g} on {min(args.cutoff, cfg.num_style_layers)} of {cfg.num_style_layers} layers, "
          f"noise {args.noise} -> {out}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    return run_tool(PROG, lambda: generate(args, argv))


if __name__ == "__main__":
    sys.exit(main())
