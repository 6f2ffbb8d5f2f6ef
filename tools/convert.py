"""alae-convert: turn an original ALAE checkpoint into an alae checkpoint.

    alae-convert model_157.pth ffhq-original.pt

Reads the original's `.pth` (podgorskiy/ALAE: `torch.save({"models": ..., "auxiliary": ...})`),
infers the model config from the tensor shapes, converts every tensor (each used exactly once,
or it fails naming the leftovers) and writes a networks-only alae checkpoint: the EMA and
training networks, `w_avg` and the resolved config. Every alae tool reads the result (and the
`.pth` itself); `alae-train --init OUT.pt` fine-tunes from it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alae.cli import ToolError, run_tool, warn
from alae.config import to_dict
from alae.model_files.checkpoint import save_networks_checkpoint
from alae.model_files.loading import ORIGINAL_CHECKPOINT, read_weights

PROG = "alae-convert"


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Convert an original ALAE .pth into an alae checkpoint.")
    p.add_argument("original", help="the original ALAE checkpoint (e.g. model_157.pth)")
    p.add_argument("out", help="the alae checkpoint to write (.pt)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    return p.parse_args(argv)


def convert(args) -> int:
    weights = read_weights(args.original)
    if weights.kind != ORIGINAL_CHECKPOINT:
        raise ToolError(f"{weights.path} is already an {weights.kind}; there is nothing to convert")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise ToolError(f"{out} exists; pass --overwrite to replace it")
    for note in weights.notes:
        warn(PROG, note)
    m = weights.config.model
    source = {"format": ORIGINAL_CHECKPOINT, "path": str(weights.path.resolve()),
              "training_networks": weights.model is not None}
    save_networks_checkpoint(out, to_dict(weights.config), weights.model, weights.ema, source)
    print(f"{PROG}: wrote {out}: {m.resolution}x{m.resolution}, channels {m.channels}, latent {m.latent_dim}, "
          f"{m.mapping_layers} mapping layers, D {m.discriminator_layers} layers x {m.discriminator_outputs} outputs; "
          f"{len(weights.ema)} tensors per network set"
          + ("" if weights.model is None else " (EMA and training sets)"))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_tool(PROG, lambda: convert(args))


if __name__ == "__main__":
    sys.exit(main())
