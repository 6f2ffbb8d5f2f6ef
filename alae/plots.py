"""Figures of a run's codes and losses (matplotlib, drawn off-screen to PNG).

    latent_scatter(codes, labels, "samples/latents.png")          # 2-D codes as they are, else PCA
    manifold_sweep(decode, codes, "samples/manifold.png")           # decoded grid over a 2-D code
    loss_curves(rows, "samples/losses.png")                         # rows of stats.jsonl

The scatter shows held-out codes coloured by their label. Codes of more than two dimensions are
projected on their first two principal components (float64 SVD of the centred codes), and the
axes say so, with the share of the variance each component explains. The manifold sweep decodes
a steps × steps grid of codes spanning the 2nd–98th percentiles of the given codes on each axis,
as the AAE and VAE papers' manifold figures do over their 2-D codes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from alae.files import atomic_write
from alae.grids import grid_uint8

SWEEP_PERCENTILES = (2.0, 98.0)  # ours: the sweep spans the codes actually used, not the prior's tails
LOSS_PREFIXES = ("loss/", "loss_")  # stats.jsonl statistics plotted as losses


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _figure()
    path = atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=100, bbox_inches="tight"))
    plt.close(fig)
    return path


def project_2d(codes: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, tuple[str, str], ...]:
    """codes [n, d] → (points [n, 2], axis labels, then each of `others` [m, d] mapped the same
    way): the codes themselves for d = 2, the code against 0 for d = 1, else the first two
    principal components of the codes (labels give the variance share)."""
    codes = np.asarray(codes, dtype=np.float64)
    others = tuple(np.asarray(o, dtype=np.float64) for o in others)
    n, d = codes.shape
    if d == 2:
        return (codes, ("code 1", "code 2"), *others)
    if d == 1:
        return (np.concatenate([codes, np.zeros_like(codes)], axis=1), ("code", ""),
                *(np.concatenate([o, np.zeros_like(o)], axis=1) for o in others))
    mean = codes.mean(axis=0)
    _, singular, vt = np.linalg.svd(codes - mean, full_matrices=False)
    share = singular**2 / max((singular**2).sum(), np.finfo(float).tiny)
    return ((codes - mean) @ vt[:2].T, (f"PC 1 of the {d}-D codes ({share[0]:.0%} of the variance)",
                                        f"PC 2 of the {d}-D codes ({share[1]:.0%})"),
            *((o - mean) @ vt[:2].T for o in others))


def circle_projection(dim: int) -> np.ndarray:
    """[dim, 2]: the linear map of dim-D codes to the plane that sends axis k to the point at angle
    2πk/dim of the unit circle (the AAE paper's view of its 10-D representation, W_c = 10·I)."""
    angles = 2 * np.pi * np.arange(dim) / dim
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def latent_scatter(codes: np.ndarray, labels: np.ndarray | None, path: str | Path, title: str = "",
                   heads: np.ndarray | None = None, projection: np.ndarray | None = None) -> Path:
    """A scatter of codes [n, d] coloured by integer labels [n] (None: one colour) → PNG at `path`;
    `heads` [K, d] (cluster heads) are marked and numbered, projected as the codes are;
    `projection` [d, 2] replaces `project_2d`."""
    plt = _figure()
    if projection is not None:
        points, (x_label, y_label) = np.asarray(codes, np.float64) @ projection, (
            f"the {codes.shape[1]}-D codes on the circle projection", "")
    else:  # the heads, where there are any, by the codes' own projection
        points, (x_label, y_label), *marks = project_2d(codes, *([] if heads is None else [heads]))
    fig, ax = plt.subplots(figsize=(6, 5.5))
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.7)
    else:
        labels = np.asarray(labels)
        for value in np.unique(labels):
            chosen = labels == value
            ax.scatter(points[chosen, 0], points[chosen, 1], s=6, alpha=0.7, label=str(value),
                       color=plt.cm.tab10(int(value) % 10))
        ax.legend(markerscale=3, fontsize=8, loc="best", title="label")
    if heads is not None:
        marks = np.asarray(heads, np.float64) @ projection if projection is not None else marks[0]
        ax.scatter(marks[:, 0], marks[:, 1], marker="x", s=60, color="black", linewidths=2)
        for k, (hx, hy) in enumerate(marks):
            ax.annotate(str(k), (hx, hy), textcoords="offset points", xytext=(4, 4), fontsize=9, weight="bold")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title or f"{len(points)} held-out codes")
    return _save(fig, path)


def sweep_codes(codes: np.ndarray, steps: int) -> np.ndarray:
    """The steps × steps grid of 2-D codes over the codes' SWEEP_PERCENTILES: [steps², 2], row-major,
    the first axis across and the second down (top row: its largest value)."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[1] != 2:
        raise ValueError(f"a manifold sweep needs 2-D codes, got shape {list(codes.shape)}")
    low, high = np.percentile(codes, SWEEP_PERCENTILES, axis=0)
    across = np.linspace(low[0], high[0], steps)
    down = np.linspace(high[1], low[1], steps)
    return np.stack(np.meshgrid(across, down), axis=-1).reshape(-1, 2)


@torch.no_grad()
def manifold_sweep(decode, codes: np.ndarray, path: str | Path, steps: int = 16) -> Path:
    """decode(codes float32 [m, 2]) → images [m, C, R, R] in [−1, 1]; the grid over `sweep_codes`
    as one PNG (grids.grid_uint8, `steps` per row)."""
    grid = torch.from_numpy(sweep_codes(codes, steps)).float()
    images = torch.cat([decode(grid[i:i + steps]).float().cpu() for i in range(0, len(grid), steps)])
    from alae.files import save_image

    return save_image(grid_uint8(images, steps), Path(path))


def loss_curves(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Every loss statistic (LOSS_PREFIXES) of stats.jsonl rows against their kimg → PNG, one
    panel per loss (their scales differ by orders of magnitude), sharing the kimg axis."""
    plt = _figure()
    names = sorted({k for row in rows for k in row if k.startswith(LOSS_PREFIXES)})
    fig, axes = plt.subplots(max(len(names), 1), 1, figsize=(7, 1.8 * max(len(names), 1) + 0.6), sharex=True,
                             squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        kept = [(row["kimg"], row[name]) for row in rows if row.get(name) is not None]
        if kept:
            kimg, value = zip(*kept)
            ax.plot(kimg, value, linewidth=1.2)
        ax.set_ylabel(name)
    axes[-1, 0].set_xlabel("kimg")
    axes[0, 0].set_title(title or "losses")
    return _save(fig, path)
