"""Multi-process training equals single-process training on the same global batch (gloo, CPU)."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from alae import distributed
from alae.config import load_config
from alae.model import LatentAutoencoder
from alae.training.data import NO_LABEL, Batch
from alae.training.objectives.alae import make_optimizers, train_step
from alae.training.schedule import Phase

GLOBAL_BATCH = 8
STEPS = 3
PHASES = [Phase(lod=1, alpha=0.6, batch=GLOBAL_BATCH, lr=0.002, resolution=8),
          Phase(lod=1, alpha=1.0, batch=GLOBAL_BATCH, lr=0.002, resolution=8)]


def tiny_config(batch_gpu: int = 0):
    return load_config("demo", ["model.channels=[16, 16, 8, 8]", "model.latent_dim=16", "model.mapping_layers=2",
                                f"train.batch_gpu={batch_gpu}", "train.style_mixing_prob=0.5",
                                f"train.batch_per_lod=[{GLOBAL_BATCH}, {GLOBAL_BATCH}, {GLOBAL_BATCH}, {GLOBAL_BATCH}]"])


def global_reals(step: int, resolution: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randint(0, 256, (GLOBAL_BATCH, 3, resolution, resolution), generator=g, dtype=torch.uint8)


def run_steps(ctx: distributed.Context, batch_gpu: int = 0) -> dict[str, torch.Tensor]:
    """A few steps of all three ALAE phases (fade-in and stable) in float64; returns the final state.

    float64 because Adam with beta1 = 0 moves each weight by about ±lr whatever the gradient's
    size, so float32 rounding in near-zero gradients (biases before instance norm) would be
    amplified into O(lr) differences; the claim under test is that the arithmetic is the same.
    """
    cfg = tiny_config(batch_gpu)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float64)  # the draws in train_step follow the default dtype
    try:
        model = LatentAutoencoder(cfg).double()
        optimizers = make_optimizers(model, cfg)
        local = GLOBAL_BATCH // ctx.world_size
        for step in range(STEPS):
            for phase in PHASES:
                reals = global_reals(step, phase.resolution)[ctx.rank * local:(ctx.rank + 1) * local]
                train_step(model, optimizers, Batch(reals, torch.full((local,), NO_LABEL)), phase, cfg, ctx, step)
    finally:
        torch.set_default_dtype(torch.float32)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def worker(rank: int, world_size: int, port: int, out_path: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    ctx = distributed.init("cpu")
    try:
        params = run_steps(ctx)
        if rank == 0:
            torch.save(params, out_path)
    finally:
        distributed.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_close(a: dict, b: dict, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """‖a − b‖ ≤ rtol·‖b‖ + atol·√numel per tensor. The absolute floor (1/2000 of one Adam step at
    lr 2e-3) covers weights that stay ~1e-7, such as the 4×4 block's first bias, which instance
    norm makes nearly gradient-free: relative error is meaningless there."""
    assert a.keys() == b.keys()
    for k in a:
        diff = (a[k] - b[k]).norm().item()
        assert diff <= rtol * b[k].norm().item() + atol * b[k].numel() ** 0.5, (k, diff, b[k].norm().item())


def single_process() -> distributed.Context:
    return distributed.Context(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))


@pytest.mark.slow
def test_two_processes_equal_one_process_with_twice_the_batch(tmp_path):
    out = tmp_path / "rank0.pt"
    mp.spawn(worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers: a multi-threaded conv backward may sum in another order
    try:
        reference = run_steps(single_process())
    finally:
        torch.set_num_threads(threads)
    assert_close(torch.load(out), reference)


def test_gradient_accumulation_equals_the_full_batch():
    assert_close(run_steps(single_process(), batch_gpu=3), run_steps(single_process()))
