"""Two gloo ranks give the figures of one process: shards by global index, features gathered in order."""
import json
import os
import socket

import inception_stand_in as stand_in
import pytest
import torch
import torch.multiprocessing as mp

from alae.tools import metrics

metrics_cache, stand_ins, lfw16 = stand_in.metrics_cache, stand_in.stand_ins, stand_in.lfw16  # pytest fixtures
NAMES = "fid1k,kid1k,fid_rec1k,mse_rec,lpips_rec1k"


def arguments(model, data, weights, out):
    # 31 held-out images: uneven shards (16 + 15); a batch that cuts each shard differently from one process's
    return [str(model), "--data", str(data), "--metrics", NAMES, "--holdout", "31", "--batch", "24",
            "--inception", str(weights[0]), "--lpips", str(weights[1]), "--mode", "legacy_tensorflow",
            "--device", "cpu", "--workers", "0", "--out", str(out)]


def worker(rank, world_size, port, argv, cache):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), ALAE_CACHE=cache)
    torch.set_num_threads(1)
    if metrics.main(argv) != 0:
        raise RuntimeError(f"rank {rank}: alae-metrics failed")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def results(out):
    return {r["metric"]: r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}


def test_two_ranks_give_the_figures_of_one(tiny_model, lfw16, stand_ins, tmp_path):
    assert metrics.main(arguments(tiny_model, lfw16, stand_ins, tmp_path / "one")) == 0
    mp.spawn(worker, args=(2, free_port(), arguments(tiny_model, lfw16, stand_ins, tmp_path / "two"),
                           str(tmp_path / "cache-two")), nprocs=2, join=True)
    one, two = results(tmp_path / "one"), results(tmp_path / "two")
    assert list(one) == list(two) == NAMES.split(",")
    for name in one:
        assert two[name]["world_size"] == 2 and one[name]["world_size"] == 1
        assert two[name]["images"] == one[name]["images"]
        assert two[name]["value"] == pytest.approx(one[name]["value"], rel=1e-5), name
    assert two["fid1k"]["real_statistics"] == "computed"  # the reals were gathered too, not read from a cache
