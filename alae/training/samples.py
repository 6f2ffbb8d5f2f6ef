"""A run's picture of itself: PNG grids (and TensorBoard images) of EMA samples and held-out reconstructions.

`samples/samples-KIMG.png`: grid_size × grid_size images from fixed latents, truncated as for
evaluation. `samples/reconstructions-KIMG.png`: the held-out originals in the first row and
their reconstructions below. Images are shown at the model's full resolution (nearest
upsampling while training at a lower lod) so grids from any point in training line up.
`save_plots` draws the codes and losses (alae.plots): `samples/latents-KIMG.png`, the held-out
images' codes (the continuous part, z, of a categorical code) coloured by their labels where
the database has them; `samples/manifold-KIMG.png` for a 2-D code without a categorical part;
and `samples/losses.png`, every loss of stats.jsonl so far (redrawn each time).
A model with a categorical code also writes `samples/classes-KIMG.png`, the AAE paper's style
figure: one row per z (the z parts of the first grid_size fixed latents), one column per
category k (the one-hot of k), so a row keeps its style across the classes. A model with a class
head (its categories from E) writes `samples/clusters-KIMG.png`, the AAE paper's cluster figure:
one row per category, first its head (G at the prior's mean z with that category), then the
held-out images E puts in it, the most confident first (black where it has fewer). With cluster
heads (the dimensionality reduction) the codes' plot marks the heads, and shows a representation of
identity heads on the circle projection (`plots.circle_projection`).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

import alae.plots as plots
import alae.randomness as randomness
from alae.files import save_image
from alae.grids import grid_uint8
from alae.metrics.reconstruction import downsampled_to, to_full_resolution
from alae.training.data import NO_LABEL

MANIFOLD_STEPS = 16  # ours: a 16 × 16 sweep (the AAE paper's figures are about 20 × 20)
CLUSTER_COLUMNS = 11  # the cluster figure: a category's head, then 10 of its held-out images


@torch.no_grad()
def save_grids(ema, grid_z: torch.Tensor, originals: torch.Tensor, reconstructions: torch.Tensor, phase, cfg,
               samples_dir: Path, kimg: float, writer=None) -> None:
    """grid_z: [grid², latent]; originals, reconstructions: [n, C, R, R] in [−1, 1] (any resolution)."""
    t, full = cfg.train, cfg.model.resolution
    noise = randomness.per_sample_noise(ema.G.noise_shapes(phase.lod), range(len(grid_z)), grid_z.device,
                                        t.seed, "grid_noise")
    samples = ema.sample(grid_z, phase.lod, phase.alpha, psi=t.truncation_psi, cutoff=t.truncation_cutoff, noise=noise)
    pairs = torch.cat([originals, reconstructions])
    sample_grid = grid_uint8(to_full_resolution(samples, full), cfg.log.grid_size)
    recon_grid = grid_uint8(to_full_resolution(pairs, full), len(originals))
    grids = {"samples": sample_grid, "reconstructions": recon_grid}
    if ema.categories:
        grids["classes"] = grid_uint8(to_full_resolution(class_figure(ema, grid_z[:cfg.log.grid_size], phase, t.seed),
                                                         full), ema.categories)
    for kind, grid in grids.items():
        save_image(grid, samples_dir / f"{kind}-{kimg:08.1f}kimg.png")
        if writer is not None:
            writer.add_image(kind, grid, int(round(kimg * 1000)))


def class_figure(model, codes: torch.Tensor, phase, seed: int) -> torch.Tensor:
    """The style figure of a categorical code: codes [rows, code_dim] (their z parts are kept) →
    images [rows·K, C, R, R], row i holding G([z_i, one-hot(k)]) for k = 0 … K−1."""
    rows, k = len(codes), model.categories
    z = codes[:, :model.latent_dim].repeat_interleave(k, dim=0)
    y = model.one_hot(torch.arange(k).repeat(rows)).to(z.device)
    noise = randomness.per_sample_noise(model.G.noise_shapes(phase.lod), range(rows * k), z.device, seed, "grid_noise")
    return model.generate(model.broadcast(model.code_of(z, y)), phase.lod, phase.alpha, noise=noise)


def cluster_figure(model, x: torch.Tensor, phase, columns: int) -> torch.Tensor:
    """The cluster figure of a class head: x [N, C, r, r] in [−1, 1] at the lod's resolution →
    images [K·columns, C, r, r], row k: G([prior mean z, one-hot(k)]), then the images whose most
    probable category is k, most confident first, then black."""
    k = model.class_head
    confidence, category = model.classify(x, phase.lod, phase.alpha).max(dim=1)
    z = model.w_avg[:model.latent_dim].to(x.dtype).expand(k, -1)
    heads = model.generate(model.broadcast(model.code_of(z, model.one_hot(torch.arange(k)).to(x.dtype))), phase.lod,
                           phase.alpha, noise="none")
    figure = torch.full((k, columns, *x.shape[1:]), -1.0, dtype=x.dtype, device=x.device)
    figure[:, 0] = heads
    for c in range(k):
        members = (category == c).nonzero().flatten()
        members = members[confidence[members].argsort(descending=True)][:columns - 1]
        figure[c, 1:1 + len(members)] = x[members]
    return figure.flatten(0, 1)


@torch.no_grad()
def save_plots(ema, originals: torch.Tensor, labels: torch.Tensor, phase, samples_dir: Path, kimg: float,
               stats_path: Path) -> None:
    """originals [N, C, R, R] in [−1, 1] at full resolution, labels int [N] (NO_LABEL where
    unknown; given to a decoder that takes them); the plots of the module docstring."""
    x = downsampled_to(originals, phase.resolution)
    known = bool((labels != NO_LABEL).all())
    codes = ema.encode(x, phase.lod, phase.alpha, labels=labels.to(x.device) if ema.decoder_labels else None)
    z = codes[:, :ema.latent_dim].double().cpu().numpy()
    heads = None if ema.cluster_heads == "none" else ema.heads.double().cpu().numpy()
    projection = plots.circle_projection(ema.latent_dim) if ema.cluster_heads == "identity" else None
    plots.latent_scatter(z, labels.numpy() if known else None, samples_dir / f"latents-{kimg:08.1f}kimg.png",
                         f"{len(z)} held-out codes at kimg {kimg:.1f}" + (" (cluster heads: x)" if heads is not None
                                                                          else ""), heads, projection)
    if ema.latent_dim == 2 and not (ema.class_head or ema.decoder_labels):
        def decode(grid):
            styles = ema.broadcast(grid.to(x.device, x.dtype))
            return to_full_resolution(ema.generate(styles, phase.lod, phase.alpha, noise="none"), originals.shape[-1])

        plots.manifold_sweep(decode, z, samples_dir / f"manifold-{kimg:08.1f}kimg.png", MANIFOLD_STEPS)
    if ema.class_head:
        columns = CLUSTER_COLUMNS
        figure = cluster_figure(ema, x, phase, columns)
        save_image(grid_uint8(to_full_resolution(figure, originals.shape[-1]), columns),
                   samples_dir / f"clusters-{kimg:08.1f}kimg.png")
    if stats_path.is_file():
        rows = [json.loads(line) for line in stats_path.read_text().splitlines() if line.strip()]
        if rows:
            plots.loss_curves(rows, samples_dir / "losses.png", f"losses to kimg {kimg:.1f}")
