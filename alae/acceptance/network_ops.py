"""Part 3: F, G, E and D through the CUDA ops against the same networks through the reference ops.

The networks are built at a config's channels (the ffhq config: 1024 px, 18 style layers) with
seeded random weights, and run at the top lod, stable (alpha 1) and mid fade-in (alpha 0.5), on
fixed inputs and fixed noise, in float32 with TF32 off. The figure per network is the largest
absolute difference divided by the largest magnitude of the reference output.
"""
from __future__ import annotations

import contextlib
import os

import torch

from alae.acceptance.report import FAILED, PASSED, Part
from alae.config import Config
from alae.kernels.benchmark import ieee_fp32_convolutions
from alae.kernels.extension import ENV_VAR
from alae.model import LatentAutoencoder

TOLERANCE = 1e-3  # float32 through 18 style layers; the self-test holds each op to 1e-4 (kernels/battery.py)
NETWORKS = ("F", "G", "E", "D")


@contextlib.contextmanager
def kernels_impl(impl: str):
    """Every op inside uses `impl` ('ref', 'cuda' or 'auto'), through ALAE_KERNELS."""
    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = impl
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_VAR)
        else:
            os.environ[ENV_VAR] = old


@contextlib.contextmanager
def no_tf32():
    """IEEE float32 in cuDNN convolutions and in matmuls while inside."""
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with ieee_fp32_convolutions():
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def network_outputs(model: LatentAutoencoder, lod: int, alpha: float, batch: int, seed: int = 0) -> dict:
    """The four networks' outputs on inputs drawn from `seed` (on the CPU, then moved)."""
    device = model.w_avg.device
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, model.latent_dim, generator=g).to(device)
    resolution = model.resolution_at(lod)
    images = (torch.rand(batch, model.image_channels, resolution, resolution, generator=g) * 2 - 1).to(device)
    noise = [torch.randn(batch, *shape, generator=g).to(device) for shape in model.G.noise_shapes(lod)]
    with torch.no_grad():
        w = model.map(z)
        return {"F": w, "G": model.G(model.broadcast(w), lod, alpha, noise), "E": model.E(images, lod, alpha),
                "D": model.D(w)}


def relative_difference(a: torch.Tensor, reference: torch.Tensor) -> float:
    """max |a − ref| / max |ref|, in float64."""
    a, reference = a.double(), reference.double()
    return ((a - reference).abs().max() / reference.abs().max().clamp_min(1e-30)).item()


def network_ops_part(cfg: Config, device: torch.device, impl: str = "cuda", reference: str = "ref",
                     batch: int = 2, number: int = 3) -> Part:
    """Part 3 for `cfg` on `device`: `impl` against `reference` (the run passes 'cuda', 'ref')."""
    part = Part(number, f"networks through the {impl} ops vs {reference}", columns=[
        "network", "lod", "alpha", "max relative difference", "tolerance", "ok"])
    torch.manual_seed(cfg.train.seed)
    model = LatentAutoencoder(cfg).to(device).eval()
    lod = cfg.model.num_lods - 1
    with no_tf32():
        for alpha in (1.0, 0.5):
            with kernels_impl(reference):
                expected = network_outputs(model, lod, alpha, batch)
            with kernels_impl(impl):
                got = network_outputs(model, lod, alpha, batch)
            for name in NETWORKS:
                diff = relative_difference(got[name], expected[name])
                part.rows.append([name, lod, alpha, diff, TOLERANCE, diff <= TOLERANCE])
    worst = max(part.rows, key=lambda row: row[3])
    part.status = PASSED if all(row[-1] for row in part.rows) else FAILED
    part.summary = (f"{cfg.model.resolution} px, channels {cfg.model.channels[0]}..{cfg.model.channels[-1]}: largest "
                    f"difference {worst[3]:.2e} ({worst[0]}, alpha {worst[2]}), tolerance {TOLERANCE:g}")
    return part
