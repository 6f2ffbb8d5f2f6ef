"""Two gloo ranks give the code, likelihood and digit metrics of one process (shards of uneven
size, codes, pixels and features gathered in order, the digit classifier trained by rank 0 and
read by rank 1)."""
import json

import pytest
import torch.multiprocessing as mp

from alae.tools import metrics
from digit_database import write_digit_database, write_family_model
from test_metrics_distributed import free_port, worker

NAMES = "knn1,linear_svm,parzen_ll1k,elbo,elbo_iw8,fd_digits1k"


def arguments(model, data, out):
    # 21 held-out images: shards of 11 + 10, batches of 8 cut them differently from one process's
    return [str(model), "--data", str(data), "--metrics", NAMES, "--holdout", "21", "--batch", "8",
            "--device", "cpu", "--workers", "0", "--out", str(out)]


def results(out):
    return {r["metric"]: r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}


def test_two_ranks_give_the_figures_of_one(tmp_path, monkeypatch):
    monkeypatch.setenv("ALAE_CACHE", str(tmp_path / "cache-one"))
    db = write_digit_database(tmp_path, train_per_class=4, test_per_class=3)
    model = write_family_model(tmp_path / "vae.pt", "vae")
    assert metrics.main(arguments(model, db, tmp_path / "one")) == 0
    mp.spawn(worker, args=(2, free_port(), arguments(model, db, tmp_path / "two"), str(tmp_path / "cache-two")),
             nprocs=2, join=True)
    one, two = results(tmp_path / "one"), results(tmp_path / "two")
    assert list(one) == list(two) == NAMES.split(",")
    for name in one:
        assert two[name]["world_size"] == 2 and two[name]["images"] == one[name]["images"]
        assert two[name]["value"] == pytest.approx(one[name]["value"], rel=1e-5), name
    assert two["fd_digits1k"]["classifier"] == "trained"
    assert len(list((tmp_path / "cache-two" / "metrics").glob("digits-*.npz"))) == 1  # written by rank 0 alone
