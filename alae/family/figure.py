"""report.png of a comparison: one row per system — its samples, its reconstructions of held-out
digits (the last grids its training wrote, `samples/samples-*.png` and
`samples/reconstructions-*.png`) and the scatter of its held-out codes (alae.plots.latent_scatter:
the codes as they are when 2-D, else their first two principal components), from its first seed's run.
Beside it, each system's scatter and loss curves (alae.plots.loss_curves of its stats.jsonl) as
`figures/NAME-codes.png` and `figures/NAME-losses.png`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from alae.datasets import to_model_range
from alae.files import atomic_write
from alae.model_files.loading import load_networks
from alae.metrics.results import read_results
from alae.plots import latent_scatter, loss_curves
from alae.training.data import database_labels, held_out_images, open_images

PANELS = ("samples", "reconstructions", "held-out codes")
PANEL_INCHES = 3.2  # side of one panel


@torch.no_grad()
def heldout_codes(run_dir: Path, data_path: Path, holdout: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes float64 [holdout, code size], labels [holdout]) of the held-out digits, EMA networks at the last lod."""
    _, model = load_networks(run_dir, "cpu", verbose=False)
    database = open_images(data_path, model.resolution)
    images, labels = held_out_images(database, holdout), database_labels(database)[-holdout:]
    codes = model.encode(to_model_range(images), model.num_lods - 1, 1.0,
                         labels=labels if model.decoder_labels else None)
    codes = codes[:, :model.latent_dim] if model.decoder_labels else codes  # z: the label is given, not learnt
    return codes.double().numpy(), labels.numpy()


def last_grid(run_dir: Path, kind: str) -> Path | None:
    """The newest `samples/KIND-*.png` of a run (names sort by kimg), or None."""
    found = sorted((run_dir / "samples").glob(f"{kind}-*.png"))
    return found[-1] if found else None


def report_figure(systems: list[tuple[str, Path]], data_path: Path, holdout: int, out: Path) -> Path:
    """report.png at `out` for (name, run_dir) pairs; the scatters and loss curves go to `out`'s
    sibling folder `figures/`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(systems), len(PANELS), squeeze=False,
                             figsize=(PANEL_INCHES * len(PANELS), PANEL_INCHES * len(systems)))
    for row, (name, run_dir) in enumerate(systems):
        codes, labels = heldout_codes(run_dir, data_path, holdout)
        scatter = latent_scatter(codes, labels, out.parent / "figures" / f"{name}-codes.png", title=name)
        if (run_dir / "stats.jsonl").is_file():
            loss_curves(read_results(run_dir / "stats.jsonl"), out.parent / "figures" / f"{name}-losses.png", name)
        for col, path in enumerate((last_grid(run_dir, "samples"), last_grid(run_dir, "reconstructions"), scatter)):
            ax = axes[row][col]
            ax.axis("off")
            if path is not None:
                ax.imshow(np.asarray(Image.open(path).convert("RGB")))
            if row == 0:
                ax.set_title(PANELS[col], fontsize=10)
        axes[row][0].text(-0.05, 0.5, name, transform=axes[row][0].transAxes, rotation=90, ha="right", va="center",
                          fontsize=10)
    fig.tight_layout()
    path = atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return path
