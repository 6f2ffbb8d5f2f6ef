"""Multi-process training equals single-process training on the same global batch (gloo, CPU):
the StyleALAE, and on tiny MLP models the VAE, the AAE with prior labels (a mixture prior,
labels from the batch, only some of them used) and the semi-supervised AAE (a labelled batch)."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from alae import distributed
from alae.config import load_config
from alae.model import LatentAutoencoder
from alae.training.data import NO_LABEL, Batch
from alae.training.objectives import objective_named
from alae.training.schedule import Phase

GLOBAL_BATCH = 8
STEPS = 3
PHASES = [Phase(lod=1, alpha=0.6, batch=GLOBAL_BATCH, lr=0.002, resolution=8),
          Phase(lod=1, alpha=1.0, batch=GLOBAL_BATCH, lr=0.002, resolution=8)]


def tiny_config(batch_gpu: int = 0):
    return load_config("demo", ["model.channels=[16, 16, 8, 8]", "model.latent_dim=16", "model.mapping_layers=2",
                                f"train.batch_gpu={batch_gpu}", "alae.style_mixing_prob=0.5",
                                f"train.batch_per_lod=[{GLOBAL_BATCH}, {GLOBAL_BATCH}, {GLOBAL_BATCH}, {GLOBAL_BATCH}]"])


# The family on the MLP backbone: one 28 px lod, grey images. The AAE's labels pick components of
# a 10-Gaussian mixture; NO_LABEL images and, per step, about half the others count as unlabelled.
MLP_PHASES = [Phase(lod=0, alpha=1.0, batch=GLOBAL_BATCH, lr=0.002, resolution=28)]
FAMILY = {
    "vae": ("mnist-vae", []),
    "aae_labels": ("mnist-aae", ["aae.prior=mixture", "aae.prior_labels=true", "aae.labelled_fraction=0.5",
                                 "model.discriminator_width=8"]),
    # The semi-supervised AAE: a class head, two adversaries and the classification phase on a labelled batch.
    "aae_semi": ("mnist-aae-semi", ["data.labelled=10", "model.discriminator_width=8"]),
    # The step's options of the references (issue 27), all on: ordinary N(0, σ²) layers, gradient
    # clipping after the ranks' average, noise on the adversary's and the encoder's inputs; the
    # AAE's learnt cluster heads with their own phase and optimizer.
    "wae_gan_options": ("mnist-wae-gan", ["model.init=normal", "model.init_std=0.05", "train.gradient_clip=0.5",
                                          "wae_gan.adversary_input_noise=0.3", "wae_gan.encoder_input_noise=0.01",
                                          "model.discriminator_width=8"]),
    "aae_heads": ("mnist-aae-cluster", ["aae.categories=4", "aae.cluster_heads=learnt", "model.discriminator_width=8"]),
}
GLOBAL_LABELS = torch.tensor([0, 3, 9, NO_LABEL, 3, 7, NO_LABEL, 1])  # one image of each rank unlabelled


def family_config(case: str, batch_gpu: int = 0):
    config, extra = FAMILY[case]
    return load_config(config, ["model.mlp_width=16", "model.latent_dim=4", f"train.batch_per_lod=[{GLOBAL_BATCH}]",
                                f"train.batch_gpu={batch_gpu}", *extra])


def config_and_phases(case: str, batch_gpu: int = 0):
    if case == "alae":
        return tiny_config(batch_gpu), PHASES
    return family_config(case, batch_gpu), MLP_PHASES


def global_reals(step: int, resolution: int, channels: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randint(0, 256, (GLOBAL_BATCH, channels, resolution, resolution), generator=g, dtype=torch.uint8)


def global_labels(case: str, step: int) -> torch.Tensor:
    """The global batch's labels at a step: NO_LABEL for ALAE, a fixed list (rolled per step) for the family."""
    if case == "alae":
        return torch.full((GLOBAL_BATCH,), NO_LABEL)
    return GLOBAL_LABELS.roll(step)


def global_labelled(cfg, step: int):
    """The step's global labelled batch (images, labels in 0..7) for a config with data.labelled, else None."""
    if not cfg.data.labelled:
        return None
    return global_reals(500 + step, 28, 1), torch.arange(GLOBAL_BATCH).roll(step)


def initial_model(cfg) -> LatentAutoencoder:
    torch.manual_seed(0)
    return LatentAutoencoder(cfg).double()


def run_steps(ctx: distributed.Context, batch_gpu: int = 0, case: str = "alae") -> dict[str, torch.Tensor]:
    """A few steps of the objective's every phase (ALAE: fade-in and stable) in float64; returns the final state.

    float64 because Adam with beta1 = 0 moves each weight by about ±lr whatever the gradient's
    size, so float32 rounding in near-zero gradients (biases before instance norm) would be
    amplified into O(lr) differences; the claim under test is that the arithmetic is the same.
    """
    cfg, phases = config_and_phases(case, batch_gpu)
    objective = objective_named(cfg.train.objective)
    torch.set_default_dtype(torch.float64)  # the draws in train_step follow the default dtype
    try:
        model = initial_model(cfg)
        optimizers = objective.make_optimizers(model, cfg)
        local = GLOBAL_BATCH // ctx.world_size
        mine = slice(ctx.rank * local, (ctx.rank + 1) * local)
        for step in range(STEPS):
            for phase in phases:
                reals = global_reals(step, phase.resolution, cfg.model.image_channels)[mine]
                labelled = global_labelled(cfg, step)
                batch = Batch(reals, global_labels(case, step)[mine],
                              None if labelled is None else (labelled[0][mine], labelled[1][mine]))
                objective.train_step(model, optimizers, batch, phase, cfg, ctx, step)
    finally:
        torch.set_default_dtype(torch.float32)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def worker(rank: int, world_size: int, port: int, out_path: str, case: str = "alae") -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    ctx = distributed.init("cpu")
    try:
        params = run_steps(ctx, case=case)
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


CASES = ["alae", *FAMILY]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_two_processes_equal_one_process_with_twice_the_batch(tmp_path, case):
    out = tmp_path / "rank0.pt"
    mp.spawn(worker, args=(2, free_port(), str(out), case), nprocs=2, join=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers: a multi-threaded conv backward may sum in another order
    try:
        reference = run_steps(single_process(), case=case)
    finally:
        torch.set_num_threads(threads)
    assert_close(torch.load(out), reference)
    torch.set_default_dtype(torch.float64)
    try:
        initial = initial_model(config_and_phases(case)[0]).state_dict()
    finally:
        torch.set_default_dtype(torch.float32)
    for net in ("E", "G", "D"):  # the steps moved every network that learns (D: ALAE, AAE)
        names = [k for k in reference if k.startswith(f"{net}.")]
        assert bool(names) == (net != "D" or case != "vae")
        assert not names or any(not torch.equal(reference[k], initial[k]) for k in names), net


@pytest.mark.parametrize("case", CASES)
def test_gradient_accumulation_equals_the_full_batch(case):
    assert_close(run_steps(single_process(), batch_gpu=3, case=case), run_steps(single_process(), case=case))


def test_the_aae_case_uses_labels_of_both_kinds():
    """What the aae_labels case exercises: labelled images told their component and unlabelled ones."""
    from alae.training.objectives.aae import discriminator_labels
    from alae.training.objectives.common import Shard, StepDraws

    cfg = family_config("aae_labels")
    model = LatentAutoencoder(cfg)
    assert model.label_classes == 10
    seen = set()
    for step in range(STEPS):
        batch = Batch(global_reals(step, 28, 1), global_labels("aae_labels", step))
        draws = StepDraws(model, cfg, MLP_PHASES[0], Shard.of(GLOBAL_BATCH, 0, 0), step, torch.device("cpu"))
        labels = discriminator_labels(model, batch, draws, cfg)
        assert (labels[batch.labels == NO_LABEL] == 10).all()
        seen |= set(labels.tolist())
    assert 10 in seen and seen - {10}
