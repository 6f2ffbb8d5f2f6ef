"""WAE-GAN (Tolstikhin et al. 2018, arXiv 1711.01558): a discriminator on codes in place of the MMD.

Each iteration, in the order of the authors' code (tolstikhin/wae, wae.py):
1. E and G descend c(x, G(z̃)) − λ·log D(z̃), z̃ = E(x) (x with `encoder_input_noise`, as the
   authors' encoder takes it): the mean cost (`reconstruction.cost`)
   plus λ·softplus(−D(z̃)) (the non-saturating form the authors use), λ = `wae_gan.penalty_weight`;
2. D ascends λ·[log D(z) + log(1 − D(z̃))] over prior samples z and the (new) codes z̃:
   it descends λ·[softplus(−D(z)) + softplus(D(z̃))].
Two Adams: E and G, and D at `wae_gan.adversary_lr_mul` × the rate (MNIST: 5e-4 against 1e-3).
Options: the config's `wae_gan` section (`Options`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import alae.distributed as distributed
from alae.config import Config, NonNegativeFloat, ObjectiveOptions, Traits, section
from alae.model import LatentAutoencoder
from alae.training.data import Batch
from alae.training.objectives.common import (
    LossStats,
    accumulate_gradients,
    autoencoder_optimizers,
    optimizer_step,
    set_trainable,
    step_inputs,
)
from alae.training.objectives import pretraining
from alae.training.objectives.options import Adversary, CodePrior, ReconstructionCost, WAEEncoder
from alae.training.objectives.reconstruction import cost
from alae.training.schedule import Phase


@section
class Options(CodePrior, ReconstructionCost, Adversary, WAEEncoder, ObjectiveOptions):
    """The `wae_gan` section (and the prior, reconstruction cost and adversary groups)."""

    penalty_weight: NonNegativeFloat = 10.0  # λ (WAE paper and code, MNIST: 10)

    def check(self, cfg: Config) -> None:
        self.check_prior(cfg, "wae_gan")
        self.check_reconstruction("wae_gan")

    def traits(self) -> Traits:
        """A deterministic encoder and an adversary D on its codes."""
        return Traits(decoder_output=self.output, code_discriminator=True, **self.prior_traits())


pretrain = pretraining.pretrain  # with pretrain_steps: the WAE code's encoder start
make_optimizers = autoencoder_optimizers  # Adams on E and G, and on D


def train_step(model: LatentAutoencoder, optimizers: dict, batch: Batch, phase: Phase, cfg: Config,
               ctx: distributed.Context, step: int) -> LossStats:
    """One WAE-GAN iteration on this rank's share of the global batch; statistics as 0-d device tensors."""
    o, lod, alpha = cfg.objective, phase.lod, phase.alpha
    shard, reals, draws = step_inputs(model, batch, phase, cfg, ctx, step)
    stats: LossStats = {}

    # 1. Encoder and generator.
    set_trainable(model, E=True, G=True, D=False)
    opt = optimizers["autoencoder"]
    opt.zero_grad(set_to_none=True)

    def autoencoder_loss(s: int, e: int):
        codes = model.encode(o.noisy_images(reals[s:e], draws, "ae", s, e), lod, alpha)
        raw = model.decode_raw(model.broadcast(codes), lod, alpha, draws.noise("ae", s, e))
        rec = cost(model, raw, reals[s:e], o).mean()
        fool = F.softplus(-model.discriminate(o.noisy(codes, draws, "ae", "noise-code", s, e))).mean()
        total = rec + o.penalty_weight * fool
        return total, {"loss_wae": total.detach(), "loss_rec": rec.detach(), "loss_fool": fool.detach()}

    accumulate_gradients(shard, autoencoder_loss, stats)
    optimizer_step(opt, ctx.world_size)

    # 2. The adversary on codes: prior samples are real.
    set_trainable(model, E=False, G=False, D=True)
    opt = optimizers["adversary"]
    opt.zero_grad(set_to_none=True)
    prior = draws.prior(model, "d")

    def adversary_loss(s: int, e: int):
        with torch.no_grad():
            codes = model.encode(o.noisy_images(reals[s:e], draws, "d", s, e), lod, alpha)
        real_logits = model.discriminate(o.noisy(prior[s:e], draws, "d", "noise-prior", s, e))
        fake_logits = model.discriminate(o.noisy(codes, draws, "d", "noise-code", s, e))
        loss = o.penalty_weight * (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())
        return loss, {"loss_d": loss.detach(), "logits_prior": real_logits.detach().mean(),
                      "logits_code": fake_logits.detach().mean()}

    accumulate_gradients(shard, adversary_loss, stats)
    optimizer_step(opt, ctx.world_size)
    return stats
