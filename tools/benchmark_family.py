"""The latent-autoencoder family on the embedded digits: train each MNIST config, then measure it.

    python -m alae.tools.benchmark_family --runs runs/family --out docs/images
    python -m alae.tools.benchmark_family --configs mnist-vae,mnist-alae --runs runs/family --skip-training

For each config: `alae-train --config NAME --out RUNS/NAME` in a subprocess (its wall time is
the figure), then on the EMA networks and the 500 held-out digits (the last of the database,
50 per class): the reconstruction MSE in the model's [−1, 1] range (alae-metrics' mse_rec);
how often an RBF SVM trained on the 4,500 training digits' pixels gives a reconstruction the
class of its input (and, for reference, the original); the ALAE paper's code evaluation:
1-NN accuracy of held-out codes against the training codes and a linear SVM (C = 0.1, its
mnist eval) on the codes; for VAEs the held-out ELBO in nats (one posterior sample per digit).
Digits of 32 px models are compared at their central 28x28 (the padding is zero). Writes
`RUNS/family.json`, a loss plot per config (`RUNS/NAME/losses.png`), copies the last sample and
reconstruction grids and the loss plots to --out as `family-NAME-*.png`, and prints a table.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC, LinearSVC

from alae.config import load_config
from alae.datasets import LMDBDataset, to_model_range
from alae.model_files.loading import load_networks
from alae.training.data import resolve_data_path
from alae.training.objectives.vae import vae_loss

CONFIGS = ("mnist-alae", "mnist-vae", "mnist-aae", "mnist-wae-mmd", "mnist-wae-gan", "mnist-style")
DIGIT_SIDE = 28
SVM_GAMMA = "scale"  # sklearn's default RBF width, 1 / (784 · pixel variance)
CODE_SVM_C = 0.1  # the original's mnist_ref eval.py: LinearSVC(C=0.1)
BATCH = 250


def central_digits(images: torch.Tensor) -> torch.Tensor:
    """[N, C, R, R] → their central [N, C, 28, 28] (a 32 px digit is the 28 px one with a 2 px zero border)."""
    border = (images.shape[-1] - DIGIT_SIDE) // 2
    return images[..., border:border + DIGIT_SIDE, border:border + DIGIT_SIDE]


def pixels(images01: torch.Tensor) -> np.ndarray:
    """[N, 1, R, R] in [0, 1] → [N, 784] float64 features of the central 28x28."""
    return central_digits(images01).flatten(1).double().numpy()


def database_digits(path: Path, resolution: int):
    """(images uint8 [N, 1, R, R], labels [N]) of the whole database at `resolution`."""
    data = LMDBDataset(path, resolution)
    images = torch.stack([data[i] for i in range(len(data))])
    return images, np.array([data.label(i) for i in range(len(data))])


@torch.no_grad()
def codes_and_reconstructions(model, images_u8: torch.Tensor):
    """(codes [N, latent], reconstructions in [0, 1] [N, C, R, R]) at full resolution, noise 'none'."""
    lod = model.num_lods - 1
    codes, recs = [], []
    for first in range(0, len(images_u8), BATCH):
        x = to_model_range(images_u8[first:first + BATCH])
        w = model.encode(x, lod, 1.0)
        codes.append(w)
        recs.append((model.generate(model.broadcast(w), lod, 1.0, noise="none") + 1) / 2)
    return torch.cat(codes), torch.cat(recs).clamp(0, 1)


@torch.no_grad()
def heldout_elbo(model, cfg, images_u8: torch.Tensor) -> float:
    """Mean ELBO in nats of a VAE over `images_u8`, one posterior sample each (seeded)."""
    g = torch.Generator().manual_seed(0)
    total = 0.0
    for first in range(0, len(images_u8), BATCH):
        x = to_model_range(images_u8[first:first + BATCH])
        epsilon = torch.randn(len(x), model.latent_dim, generator=g)
        _, stats = vae_loss(model, x, epsilon, model.num_lods - 1, 1.0, "none", cfg)
        total += stats["elbo"].item() * len(x)
    return total / len(images_u8)


def evaluate(run_dir: Path, classifier: SVC) -> dict:
    """The figures of one trained run (module docstring)."""
    weights_cfg = load_config(str(run_dir / "config.yaml"))
    _, model = load_networks(run_dir, "cpu", verbose=False)
    data = resolve_data_path(weights_cfg, None)
    images, labels = database_digits(data, model.resolution)
    holdout = weights_cfg.data.holdout
    train_x, test_x = images[:-holdout], images[-holdout:]
    train_y, test_y = labels[:-holdout], labels[-holdout:]
    train_codes, _ = codes_and_reconstructions(model, train_x)
    test_codes, recs = codes_and_reconstructions(model, test_x)
    originals = test_x.float() / 255
    mse = float(((recs * 2 - 1) - (originals * 2 - 1)).square().mean())
    nearest = KNeighborsClassifier(n_neighbors=1).fit(train_codes.numpy(), train_y)
    linear = LinearSVC(C=CODE_SVM_C, max_iter=20000).fit(train_codes.numpy(), train_y)
    figures = {
        "heldout_mse": mse,
        "reconstruction_class_accuracy": float((classifier.predict(pixels(recs)) == test_y).mean()),
        "original_class_accuracy": float((classifier.predict(pixels(originals)) == test_y).mean()),
        "code_1nn_accuracy": float((nearest.predict(test_codes.numpy()) == test_y).mean()),
        "code_linear_svm_accuracy": float((linear.predict(test_codes.numpy()) == test_y).mean()),
    }
    if weights_cfg.train.objective == "vae":
        figures["heldout_elbo_nats"] = heldout_elbo(model, weights_cfg, test_x)
    return figures


def plot_losses(run_dir: Path) -> Path:
    """RUN/losses.png: every loss statistic of stats.jsonl against kimg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines() if line.strip()]
    names = sorted({k for r in rows for k in r if k.startswith("loss") or k in ("elbo", "nll", "kl", "mmd", "r1")})
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        ax.plot([r["kimg"] for r in rows if name in r], [r[name] for r in rows if name in r])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("kimg", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(run_dir.name, fontsize=10)
    fig.tight_layout()
    path = run_dir / "losses.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def train(name: str, run_dir: Path) -> float:
    """Train config `name` into run_dir from scratch in a subprocess; its wall time in seconds."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "alae.train", "--config", name, "--out", str(run_dir)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated config names")
    p.add_argument("--runs", required=True, help="folder for the run directories and family.json")
    p.add_argument("--out", help="folder to copy the grids and loss plots to (e.g. docs/images)")
    p.add_argument("--skip-training", action="store_true", help="measure the runs already in --runs")
    args = p.parse_args(argv)
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    results_path = runs / "family.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    digits_cfg = load_config("mnist-alae")
    images, labels = database_digits(resolve_data_path(digits_cfg, None), DIGIT_SIDE)
    holdout = digits_cfg.data.holdout
    classifier = SVC(kernel="rbf", gamma=SVM_GAMMA).fit(pixels(images[:-holdout].float() / 255), labels[:-holdout])
    for name in args.configs.split(","):
        run_dir = runs / name
        seconds = results.get(name, {}).get("train_seconds") if args.skip_training else train(name, run_dir)
        results[name] = {"train_seconds": seconds, **evaluate(run_dir, classifier)}
        losses = plot_losses(run_dir)
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            for kind in ("samples", "reconstructions"):
                shutil.copy(sorted((run_dir / "samples").glob(f"{kind}-*.png"))[-1], out / f"family-{name}-{kind}.png")
            shutil.copy(losses, out / f"family-{name}-losses.png")
        results_path.write_text(json.dumps(results, indent=2) + "\n")
        print(name, json.dumps(results[name]), flush=True)
    columns = ["train_seconds", "heldout_mse", "reconstruction_class_accuracy", "original_class_accuracy",
               "code_1nn_accuracy", "code_linear_svm_accuracy", "heldout_elbo_nats"]
    print("| config | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, r in results.items():
        print(f"| {name} | " + " | ".join("" if r.get(c) is None else f"{r[c]:.4g}" for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
