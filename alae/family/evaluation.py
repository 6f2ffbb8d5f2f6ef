"""The registry metrics of one run of a comparison, kept in a JSON file so that a resumed or
extended comparison computes only the metrics it does not have yet.

The metrics run on the EMA networks at their last lod, on the run's data with its data.holdout
(the held-out digits), with metric seed `METRIC_SEED` for every run, so that the draws (ELBO
noise, Parzen samples, SVM state) are the same for all systems and seeds. A metric undefined for
a system is kept with its one-line reason (value None).
"""
from __future__ import annotations

import json
from pathlib import Path

from alae.files import save_json
from alae.metrics import compute_metrics
from alae.model_files.loading import load_networks

METRIC_SEED = 0  # one base seed of the metrics' own draws for every run (not the training seed)


def evaluate_run(run_dir: Path, holdout: int, names: list[str], data_path: Path, device: str,
                 cache: Path) -> dict[str, dict]:
    """{metric: {"value": float | None, "skipped": reason | None, "seconds": s}} for `names`,
    reading those already in `cache` (a JSON file) and adding the others to it (atomically)."""
    done = json.loads(cache.read_text()) if cache.is_file() else {}
    missing = [name for name in names if name not in done]
    if missing:
        _, model = load_networks(run_dir, device, verbose=False)
        for result in compute_metrics(missing, model, data_path, holdout=holdout, seed=METRIC_SEED, progress=False,
                                      model_path=run_dir):
            done[result.metric] = {"value": result.value, "skipped": result.skipped,
                                   "seconds": round(result.seconds, 3)}
        save_json(done, cache)
    return {name: done[name] for name in names}
