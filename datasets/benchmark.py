"""Loader throughput: images/s through a torch DataLoader per resolution and worker count.

    python -m alae.datasets.benchmark [--data DB] [--res 4 8 ... 1024] [--workers 0 2 8]
                                      [--images 32] [--batch-size 32] [--seconds 3]

Without --data it writes `--images` synthetic photos (smooth random colour fields plus pixel
noise, so PNG levels compress roughly like photographs) at the largest --res into a temporary
folder and builds a database from them with the real builder. Each cell times a steady stream of
shuffled, mirrored batches after the first batch (worker start-up excluded).
"""
import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, RandomSampler

from .builder import build_database
from .lmdb_dataset import LMDBDataset

DEFAULT_RESOLUTIONS = [4, 8, 16, 32, 64, 128, 256, 512, 1024]
DEFAULT_WORKERS = [0, 2, 8]


def write_synthetic_images(folder: Path, count: int, resolution: int, seed: int = 0) -> None:
    """`count` RGB PNGs of resolution x resolution: a bicubic-upsampled 8x8 random field plus noise (sigma 6)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        field = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(
            (resolution, resolution), Image.Resampling.BICUBIC
        )
        noisy = np.asarray(field, dtype=np.float32) + rng.normal(0.0, 6.0, (resolution, resolution, 3))
        Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.png", compress_level=1)


def loader_images_per_second(dataset: LMDBDataset, workers: int, batch_size: int, seconds: float) -> float:
    """Steady-state images/s of a shuffled DataLoader over `dataset`, timed after its first batch."""
    sampler = RandomSampler(dataset, replacement=True, num_samples=1 << 40)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers)
    batches = iter(loader)
    next(batches)
    images, started = 0, time.perf_counter()
    for batch in batches:
        images += batch.shape[0]
        if time.perf_counter() - started >= seconds:
            break
    rate = images / (time.perf_counter() - started)
    del batches  # shuts the workers down
    return rate


def run(data: Path, resolutions: list[int], workers: list[int], batch_size: int, seconds: float) -> None:
    """Print a table of loader images/s: one row per resolution, one column per worker count."""
    dataset = LMDBDataset(data, resolutions[0], mirror=True)
    encodings = ", ".join(f"{r} {dataset.metadata['record_encodings'][str(r)]}" for r in dataset.resolutions)
    print(f"database {data}: {len(dataset)} images; records: {encodings}")
    print(f"loader images/s (batch {batch_size}, shuffled, mirrored, {seconds:g} s per cell, torch threads {torch.get_num_threads()})")
    print("   res | " + " | ".join(f"{w:>2} workers" for w in workers))
    for resolution in resolutions:
        dataset.set_resolution(resolution)
        rates = [loader_images_per_second(dataset, w, batch_size, seconds) for w in workers]
        print(f"{resolution:>6} | " + " | ".join(f"{rate:>10.0f}" for rate in rates), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alae.datasets.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="existing database (default: build a synthetic one)")
    parser.add_argument("--res", type=int, nargs="+", default=DEFAULT_RESOLUTIONS, help="resolutions to time")
    parser.add_argument("--workers", type=int, nargs="+", default=DEFAULT_WORKERS, help="DataLoader worker counts")
    parser.add_argument("--images", type=int, default=32, help="synthetic images to build (default 32)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per cell")
    args = parser.parse_args(argv)
    resolutions = sorted(args.res)
    warnings.filterwarnings("ignore", message="This DataLoader will create", category=UserWarning)
    if args.data is not None:
        run(args.data, resolutions, args.workers, args.batch_size, args.seconds)
        return 0
    with tempfile.TemporaryDirectory(prefix="alae-benchmark-") as scratch:
        scratch = Path(scratch)
        started = time.perf_counter()
        write_synthetic_images(scratch / "images", args.images, resolutions[-1])
        summary = build_database(str(scratch / "images"), scratch / "db", min_resolution=resolutions[0])
        size = sum(f.stat().st_size for f in (scratch / "db").iterdir())
        print(f"built {summary.count} synthetic {resolutions[-1]}px images in {time.perf_counter() - started:.1f}s "
              f"({size / summary.count / 2**20:.2f} MiB per image, all levels)")
        run(scratch / "db", resolutions, args.workers, args.batch_size, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
