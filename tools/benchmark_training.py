"""Training speed and memory per lod: `python -m alae.tools.benchmark_training --config demo`.

Times the config's objective's `train_step` (for ALAE all three steps, on one process) at every lod of a config
on random images: warm-up steps first, then the median over timed steps (the device is
synchronized around each step). Prints img/s, ms per step and, on CUDA, the peak memory
allocated per lod — the figure docs/TRAINING.md asks for per GPU. Overrides such as
`train.batch_gpu=8` apply as in `alae-train`.
"""
from __future__ import annotations

import argparse

import torch

import alae.distributed as distributed
from alae.config import check_world_size, load_config
from alae.training.timing import time_lod, training_state


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="demo")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--lods", type=int, nargs="*", help="lods to time (default: all)")
    p.add_argument("--batch", type=int, help="images per step (default: the config's batch per lod / --world-size)")
    p.add_argument("--world-size", type=int, default=1,
                   help="time one GPU's share of the global batch as on this many GPUs (memory per GPU)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("overrides", nargs="*", metavar="key=value")
    args = p.parse_intermixed_args(argv)
    cfg = load_config(args.config, args.overrides)
    check_world_size(cfg, args.world_size)
    ctx = distributed.init(args.device)
    model, ema, optimizers = training_state(cfg, ctx.device)
    name = torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else "CPU"
    print(f"{args.config} on {name}, torch {torch.__version__}, batch_gpu {cfg.train.batch_gpu or 'off'}, "
          f"share of {args.world_size} process(es), median of {args.steps} steps after {args.warmup} warm-up, "
          f"EMA copy resident ({sum(p.numel() for p in ema.parameters()) / 1e6:.1f} M parameters)")
    print(f"{'lod':>3} {'px':>5} {'batch':>5} {'img/s':>9} {'ms/step':>9} {'peak GiB':>9}")
    for lod in args.lods if args.lods is not None else range(cfg.model.num_lods):
        batch = args.batch or cfg.train.batch_per_lod[lod] // args.world_size
        r = time_lod(model, optimizers, cfg, ctx, lod, batch, args.warmup, args.steps)
        print(f"{lod:>3} {cfg.model.resolution_at(lod):>5} {batch:>5} {batch / r['seconds']:>9.1f} {1000 * r['seconds']:>9.1f} "
              f"{r['peak_bytes'] / 2**30:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
