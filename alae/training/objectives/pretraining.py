"""The WAE code's encoder start (tolstikhin/wae, wae.py `pretrain_encoder`): before training, E
alone learns to give codes whose mean and covariance are the prior's.

Each step draws `pretrain_batch` training images without replacement and as many prior samples,
and descends the moment loss
    mean_d (μ_p − μ_q)² + mean_{d,d'} (Σ_p − Σ_q)²,
μ and Σ the batch mean and covariance (normalised by n − 1) of prior samples p and codes q, with
an Adam of its own at the first lod's rate (dropped afterwards); it stops after `pretrain_steps`
steps or once a step's loss is below `pretrain_stop`, as the authors' code. E sees its images
with `encoder_input_noise`, as in training. Every rank runs the whole batch, so every rank takes
the same steps with no communication; the draws depend on (seed, step) only.

An objective that uses it names `pretrain = pretraining.pretrain` in its module; the loop calls
it once, at the start of a new run (not on resume, nor after --init).
"""
from __future__ import annotations

from typing import Callable

import torch

import alae.distributed as distributed
import alae.randomness as randomness
from alae.config import Config
from alae.model import LatentAutoencoder
from alae.training.objectives.common import adam, model_images, set_trainable
from alae.training.schedule import phase_at


def moment_loss(codes: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """The authors' pre-training loss between codes and prior samples, both [n, d] (n ≥ 2)."""
    mean_q, mean_p = codes.mean(dim=0, keepdim=True), prior.mean(dim=0, keepdim=True)
    n = codes.shape[0]
    cov_q = (codes - mean_q).t() @ (codes - mean_q) / (n - 1)
    cov_p = (prior - mean_p).t() @ (prior - mean_p) / (n - 1)
    return (mean_p - mean_q).square().mean() + (cov_p - cov_q).square().mean()


def pretrain(model: LatentAutoencoder, cfg: Config, ctx: distributed.Context,
             images: Callable[[torch.Tensor], torch.Tensor], num_train: int) -> str | None:
    """Run the start (module docstring) when the objective's `pretrain_steps` asks for it; `images`
    maps training indices (int64 [n]) to uint8 images [n, C, R, R]. Returns a line for the log, or
    None when there is none to run."""
    o = cfg.objective
    if not o.pretrain_steps:
        return None
    phase = phase_at(cfg.train, cfg.model, 0)
    optimizer = adam(model.E.parameters(), cfg)
    set_trainable(model, E=True, G=False, D=False)
    count = min(num_train, o.pretrain_batch)
    for step in range(o.pretrain_steps):
        g = randomness.generator(cfg.train.seed, "pretrain", step)
        index = torch.randperm(num_train, generator=g)[:count]
        reals = model_images(model, images(index), phase, ctx.device)
        if o.encoder_input_noise:
            noise = randomness.global_normal((count, reals[0].numel()), slice(None), cfg.train.seed, "pretrain",
                                             step, "input-noise").to(reals)
            reals = reals + 2 * o.encoder_input_noise * noise.view_as(reals)
        prior = model.prior.sample(count, g).to(reals)
        loss = moment_loss(model.encode(reals, phase.lod, phase.alpha), prior)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if value < o.pretrain_stop:
            break
    return (f"pre-trained E toward the prior's mean and covariance: {step + 1} steps of {count} images, "
            f"moment loss {value:.4f}")
