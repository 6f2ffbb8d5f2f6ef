"""The ALAE objective (Pidhorskyi et al. 2020, Algorithm 1): three steps per iteration and their
three losses (non-saturating logistic, `softplus`), each a batch mean per micro-batch.

1. discriminator step (E and D learn): softplus(D(E(fake))) + softplus(−D(E(real)))
   + γ/2·‖∇_x D(E(x_real))‖² (R1; γ = 10 in the original code), the R1 term scaled by the lazy
   interval when it is applied only every few steps; fakes G(F(z)) with style mixing, no grad;
2. generator step (F and G learn): softplus(−D(E(G(styles)))), styles mixed, E and D frozen;
3. latent reconstruction step: ‖E(G(w)) − w‖² averaged over batch and latent dimensions, with
   w = F(z) detached as the target (the gradient reaches F, if it learns here, through G only);
   the original code steps both optimizers here (`alae.latent_step_updates_mapping`).

Its options are the config's `alae` section (`Options`); the defaults are the original code's.

`train_step` runs them on this rank's share of a global batch, drawing every latent,
style-mixing choice and noise map from `alae.randomness` by global sample index, so N ranks
compute what one rank computes with the whole batch. Nothing here reads a tensor back to the host.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

import alae.distributed as distributed
from alae.config import (
    Config,
    Decay,
    Fraction,
    NonNegativeFloat,
    ObjectiveOptions,
    PositiveInt,
    StrictBool,
    Traits,
    section,
)
from alae.model import LatentAutoencoder
from alae.training.data import Batch
from alae.training.objectives.common import (
    LossStats,
    Shard,
    accumulate_gradients,
    adam,
    optimizer_step,
    set_trainable,
    step_inputs,
)
from alae.training.schedule import Phase


@section
class Options(ObjectiveOptions):
    """The `alae` section."""

    r1_gamma: NonNegativeFloat = 10.0  # original
    r1_interval: PositiveInt = 1  # original applies R1 every D step; >1 = lazy R1 (scaled by the interval)
    style_mixing_prob: Fraction = 0.9  # original
    # per_sample: each sample mixes with style_mixing_prob at a crossover in [1, layers); per_batch:
    # the original's one draw per batch with cutoff randint(1, layers) inclusive (effective rate
    # prob·(1 − 1/layers)). docs/TRAINING.md, "Differences from the original code".
    style_mixing: Literal["per_sample", "per_batch"] = "per_sample"
    w_avg_updates: Literal["once", "every_step"] = "once"  # once: after the generator step; every_step: the original's one per generate call (3)
    w_avg_beta: Decay = 0.995  # original dlatent_avg_beta
    latent_step_updates_mapping: StrictBool = True  # original steps F and G in the latent step; paper: G only (with E)

    def traits(self) -> Traits:
        """F maps z to the codes w; D judges E's codes; the mlp E ends with a LeakyReLU, as F does."""
        return Traits(mapping=True, code_discriminator=True, encoder_activation="lrelu")


def make_optimizers(model: LatentAutoencoder, cfg: Config) -> dict[str, torch.optim.Adam]:
    """Two Adams as in the original code: one for E and D, one for F and G (equalized lr → plain Adam)."""
    return {
        "encoder_discriminator": adam([*model.E.parameters(), *model.D.parameters()], cfg),
        "mapping_generator": adam([*model.F.parameters(), *model.G.parameters()], cfg),
    }


# --- the three losses --------------------------------------------------------------------------

def discriminator_loss(model: LatentAutoencoder, reals: torch.Tensor, fakes: torch.Tensor, lod: int, alpha: float,
                       r1_weight: float) -> tuple[torch.Tensor, LossStats]:
    """reals, fakes: [N, C, R, R] in [−1, 1]; r1_weight = γ/2 × interval (0 disables R1)."""
    reals = reals.detach().requires_grad_(r1_weight > 0)
    real_logits = model.discriminate(model.encode(reals, lod, alpha))
    fake_logits = model.discriminate(model.encode(fakes.detach(), lod, alpha))
    loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    stats = {"loss_d": loss.detach(), "logits_real": real_logits.detach().mean(),
             "logits_fake": fake_logits.detach().mean()}
    if r1_weight > 0:
        (grad,) = torch.autograd.grad(real_logits.sum(), reals, create_graph=True)
        r1 = grad.square().sum(dim=[1, 2, 3]).mean() / model.input_scale**2  # ‖∇ D(E(x))‖² at E's input
        loss = loss + r1_weight * r1
        stats["r1"] = r1.detach()
    return loss, stats


def generator_loss(model: LatentAutoencoder, styles: torch.Tensor, lod: int, alpha: float, noise) -> tuple[torch.Tensor, LossStats]:
    """styles: [N, layers, latent] (mixed); the generator wants D to call its images real."""
    logits = model.discriminate(model.encode(model.generate(styles, lod, alpha, noise=noise), lod, alpha))
    loss = F.softplus(-logits).mean()
    return loss, {"loss_g": loss.detach()}


def latent_loss(model: LatentAutoencoder, w: torch.Tensor, lod: int, alpha: float, noise) -> tuple[torch.Tensor, LossStats]:
    """w: [N, latent] from F; the encoder must recover it from the image G makes of it."""
    recovered = model.encode(model.generate(model.broadcast(w), lod, alpha, noise=noise), lod, alpha)
    loss = (recovered - w.detach()).square().mean()
    return loss, {"loss_latent": loss.detach()}


class WAverageUpdate:
    """Sums w over an update's micro-batches and moves `model.w_avg` toward the global batch mean."""

    def __init__(self, model: LatentAutoencoder, cfg: Config, shard: Shard, world_size: int, device: torch.device):
        self.model, self.beta, self.shard, self.world_size = model, cfg.objective.w_avg_beta, shard, world_size
        self.w_sum = torch.zeros(cfg.model.latent_dim, device=device)

    def add(self, w: torch.Tensor) -> None:
        self.w_sum += w.detach().sum(0)

    def apply(self) -> None:
        w_mean = self.w_sum / self.shard.size
        distributed.all_reduce_mean_([w_mean], self.world_size)
        self.model.update_w_avg(w_mean[None], self.beta)
        self.w_sum.zero_()


# --- the iteration -------------------------------------------------------------------------------

def train_step(model: LatentAutoencoder, optimizers: dict, batch: Batch, phase: Phase, cfg: Config,
               ctx: distributed.Context, step: int) -> LossStats:
    """One ALAE iteration on this rank's share of the global batch (its images; labels unused).

    Returns this rank's loss statistics as 0-d tensors on the device (not reduced over ranks,
    never read on the host here): the loop sums them over a tick and reduces them once.
    """
    o, lod, alpha = cfg.objective, phase.lod, phase.alpha
    shard, reals, draws = step_inputs(model, batch, phase, cfg, ctx, step)
    w_avg = WAverageUpdate(model, cfg, shard, ctx.world_size, ctx.device)
    every_step = o.w_avg_updates == "every_step"  # the original's: one update per generate call
    stats: LossStats = {}

    # 1. Discriminator step: E and D learn to tell real images from generated ones (+ R1 on reals).
    set_trainable(model, F=False, G=False, E=True, D=True)
    opt = optimizers["encoder_discriminator"]
    opt.zero_grad(set_to_none=True)
    r1_weight = o.r1_gamma / 2 * o.r1_interval if step % o.r1_interval == 0 else 0.0
    z1, z2, cross = draws.mixing("d", o.style_mixing_prob, o.style_mixing)

    def d_loss(s: int, e: int):
        with torch.no_grad():
            w1 = model.map(z1[s:e])
            if every_step:
                w_avg.add(w1)
            styles = model.crossover_styles(w1, model.map(z2[s:e]), cross[s:e], lod)
            fakes = model.generate(styles, lod, alpha, noise=draws.noise("d", s, e))
        return discriminator_loss(model, reals[s:e], fakes, lod, alpha, r1_weight)

    accumulate_gradients(shard, d_loss, stats)
    optimizer_step(opt, ctx.world_size)
    if every_step:
        w_avg.apply()

    # 2. Generator step: F and G learn to make images D (through E) calls real.
    set_trainable(model, F=True, G=True, E=False, D=False)
    opt = optimizers["mapping_generator"]
    opt.zero_grad(set_to_none=True)
    z1, z2, cross = draws.mixing("g", o.style_mixing_prob, o.style_mixing)

    def g_loss(s: int, e: int):
        w1 = model.map(z1[s:e])
        w_avg.add(w1)
        styles = model.crossover_styles(w1, model.map(z2[s:e]), cross[s:e], lod)
        return generator_loss(model, styles, lod, alpha, draws.noise("g", s, e))

    accumulate_gradients(shard, g_loss, stats)
    optimizer_step(opt, ctx.world_size)
    w_avg.apply()

    # 3. Latent reconstruction step: E(G(w)) ≈ w. The original code also steps F here (option).
    set_trainable(model, F=o.latent_step_updates_mapping, G=True, E=True, D=False)
    for opt in optimizers.values():
        opt.zero_grad(set_to_none=True)
    z = draws.latents("latent", "z1")

    def reconstruction_loss(s: int, e: int):
        w = model.map(z[s:e])
        if every_step:
            w_avg.add(w)
        return latent_loss(model, w, lod, alpha, draws.noise("latent", s, e))

    accumulate_gradients(shard, reconstruction_loss, stats)
    for opt in optimizers.values():
        optimizer_step(opt, ctx.world_size)
    if every_step:
        w_avg.apply()
    return stats
