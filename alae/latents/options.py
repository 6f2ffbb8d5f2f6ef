"""The command-line options of every tool that turns real images (or seeds) into latents, in one place.

alae-reconstruct, alae-edit, alae-mix and alae-interpolate take the same --align, --refine,
--lpips, --noise, ... and build the same landmarker and refinement settings from them.
"""
from __future__ import annotations

import argparse
from typing import NamedTuple

import torch

from alae.cli import resolve_device
from alae.config import ModelConfig
from alae.faces.landmarks import FaceLandmarker
from alae.latents.noise import NOISE_MODES
from alae.latents.projection import DEFAULT_LR, RefineSettings
from alae.metrics.lpips import load_lpips
from alae.model import LatentAutoencoder
from alae.model_files.loading import Weights, networks_from_weights, read_weights


def add_inversion_arguments(p: argparse.ArgumentParser, refine: bool = True) -> None:
    """The image options; `refine=False` leaves out refinement and noise (for tools that use
    the encoder's w alone, such as alae-directions fit)."""
    g = p.add_argument_group("real images")
    g.add_argument("--align", action="store_true", help="cut every face out FFHQ-style first (dlib landmarks)")
    g.add_argument("--upsample", type=int, default=1, help="with --align: dlib detector upsampling (small faces)")
    if refine:
        g.add_argument("--refine", type=int, default=0, metavar="N", help="N Adam steps on W+ from the encoder's w")
        g.add_argument("--lr", type=float, default=DEFAULT_LR, help="refinement peak learning rate")
        g.add_argument("--lpips", metavar="PATH", help="LPIPS weights (NVlabs vgg16.pt, or a folder with "
                                                       "torchvision's vgg16 and LPIPS' vgg.pth)")
        g.add_argument("--lpips-weight", type=float, default=1.0, help="LPIPS weight in the refinement loss")
        g.add_argument("--noise", choices=NOISE_MODES, default="const",
                       help="generator noise (default const: one fixed set of maps)")
    g.add_argument("--batch", type=int, default=8, help="images per batch")
    add_lmdb_arguments(g)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")


def add_lmdb_arguments(g) -> None:
    """--lmdb-split / --holdout: which images of an alae LMDB a tool reads (load_image_model)."""
    g.add_argument("--lmdb-split", choices=["held-out", "all"], default="held-out",
                   help="which images of an alae LMDB to use")
    g.add_argument("--holdout", type=int, help="held-out images at the end of an LMDB (default: the model's "
                                               "data.holdout, 32 for original models)")


def add_seed_arguments(p: argparse.ArgumentParser) -> None:
    """--psi / --cutoff for latents drawn from seeds (alae.latents.endpoints), as alae-generate's."""
    p.add_argument("--psi", type=float, default=0.7, help="truncation psi for seeds (1 = none; original: 0.7)")
    p.add_argument("--cutoff", type=int, default=8, help="style layers truncated for seeds (original: 8)")


def check_inversion_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.batch < 1:
        p.error("--batch must be at least 1")
    if getattr(args, "refine", 0) < 0:
        p.error("--refine must be >= 0")


class ImageModel(NamedTuple):
    """What an image tool loads: the model file's weights (and full config), the networks on
    `device`, and how many images of an LMDB are held out (--holdout, else the run's data.holdout)."""

    weights: Weights
    config: ModelConfig
    model: LatentAutoencoder
    device: torch.device
    holdout: int


def load_image_model(args: argparse.Namespace) -> ImageModel:
    device = resolve_device(args.device)
    weights = read_weights(args.model)
    cfg, model = networks_from_weights(weights, device)
    holdout = args.holdout if args.holdout is not None else weights.config.data.holdout
    return ImageModel(weights, cfg, model, device, holdout)


def inversion_setup(args: argparse.Namespace, device: torch.device):
    """(a FaceLandmarker or None, RefineSettings with LPIPS loaded if asked); LPIPSError or
    AlignmentError (user errors, one line) when the LPIPS weights or dlib are unusable."""
    lpips = load_lpips(args.lpips, device) if getattr(args, "lpips", None) else None
    landmarker = FaceLandmarker(upsample=args.upsample) if args.align else None
    if not hasattr(args, "refine"):
        return landmarker, RefineSettings()
    return landmarker, RefineSettings(steps=args.refine, lr=args.lr, lpips=lpips, lpips_weight=args.lpips_weight)
