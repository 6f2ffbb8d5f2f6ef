"""alae-convert: an original ALAE checkpoint as an alae checkpoint; any model as safetensors.

    alae-convert model_157.pth ffhq-original.pt
    alae-convert model_157.pth ffhq-original.safetensors
    alae-convert runs/ffhq ffhq.safetensors

Reads the original's `.pth` (podgorskiy/ALAE: `torch.save({"models": ..., "auxiliary": ...})`),
infers the model config from the tensor shapes, converts every tensor (each used exactly once,
or it fails naming the leftovers) and writes a networks-only alae checkpoint: the EMA and
training networks, `w_avg` and the resolved config. An OUT ending in `.safetensors` gets the
same networks from any model file (an original `.pth`, an alae checkpoint or run directory) as
a safetensors file, with the config and where it came from as JSON in its metadata
(`alae.model_files.safetensors_file`). Every alae tool reads either result (and the `.pth`
itself); `alae-train --init OUT` fine-tunes from it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alae.cli import ToolError, run_tool, warn
from alae.config import to_dict
from alae.model_files.checkpoint import FORMAT_VERSION, save_networks_checkpoint
from alae.model_files.loading import ORIGINAL_CHECKPOINT, read_weights
from alae.model_files.safetensors_file import save_networks

PROG = "alae-convert"


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Convert an original ALAE .pth into an alae checkpoint, "
                                                        "or any model into a .safetensors file.")
    p.add_argument("model", help="the original ALAE checkpoint (e.g. model_157.pth); for a .safetensors OUT also "
                                 "an alae checkpoint or run directory")
    p.add_argument("out", help="the file to write: an alae checkpoint (.pt), or safetensors (.safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    return p.parse_args(argv)


def convert(args) -> int:
    weights = read_weights(args.model)
    out = Path(args.out)
    as_safetensors = out.suffix == ".safetensors"
    if weights.kind != ORIGINAL_CHECKPOINT and not as_safetensors:
        raise ToolError(f"{weights.path} is already an {weights.kind}; there is nothing to convert "
                        f"(to share it as plain tensors: {PROG} {args.model} OUT.safetensors)")
    if out.exists() and not args.overwrite:
        raise ToolError(f"{out} exists; pass --overwrite to replace it")
    for note in weights.notes:
        warn(PROG, note)
    m = weights.config.model
    source = {"format": weights.kind, "path": str(weights.path.resolve()),
              "training_networks": weights.model is not None}
    if weights.progress is not None:
        source["images_seen"] = weights.progress.get("images_seen")
    if as_safetensors:
        save_networks(out, to_dict(weights.config), weights.ema, weights.model, source, FORMAT_VERSION)
    else:
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
