"""The adversarial autoencoder (Makhzani et al. 2015, arXiv 1511.05644): the aggregated
posterior q(z) is matched to a prior by a discriminator on codes.

Each iteration, as the paper's two phases:
1. reconstruction: E and G minimise the reconstruction cost c(x, G(q(x))) (`reconstruction.cost`);
2. regularisation: D learns prior samples as real and codes as fake,
   softplus(−D(z_prior)) + softplus(D(q(x))); then E, as the generator, learns to fool it,
   softplus(−D(q(x))) (the non-saturating form).
q(x) by `train.posterior`: deterministic E(x); gaussian μ + σ·ε (reparameterised, as a VAE's
encoder); universal E(x, η) with η ~ N(0, 1) as an extra input channel. The prior is
`train.prior` (any of alae.priors). With `train.prior_labels` (the paper's semi-supervised
regularisation), D also sees the one-hot label and the prior sample of an image of class k comes
from the prior's component k; a share 1 − `train.labelled_fraction` of the images (chosen per
global index and step), and every image of a database without labels, counts as unlabelled:
the extra class K, whose prior samples come from the whole prior.
Three Adams: E and G (reconstruction); D and E (regularisation, at `train.adversary_lr_mul` × the rate).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import alae.distributed as distributed
import alae.randomness as randomness
from alae.config import Config
from alae.model import LatentAutoencoder
from alae.training.data import NO_LABEL, Batch
from alae.training.objectives.common import (
    LossStats,
    StepDraws,
    accumulate_gradients,
    adam,
    autoencoder_optimizers,
    optimizer_step,
    set_trainable,
    step_inputs,
)
from alae.training.objectives.reconstruction import cost
from alae.training.schedule import Phase


def make_optimizers(model: LatentAutoencoder, cfg: Config) -> dict[str, torch.optim.Adam]:
    """Adams on E and G ('autoencoder'), on D ('adversary') and on E alone ('encoder'); the two of
    the regularisation phase at train.adversary_lr_mul × the rate."""
    return {**autoencoder_optimizers(model, cfg),
            "encoder": adam(model.E.parameters(), cfg, cfg.train.adversary_lr_mul)}


def posterior_codes(model: LatentAutoencoder, reals: torch.Tensor, lod: int, alpha: float, epsilon: torch.Tensor,
                    eta: torch.Tensor | None) -> torch.Tensor:
    """q(x): codes [N, latent] of reals [N, C, R, R] under the model's posterior (see the module docstring)."""
    if model.posterior == "gaussian":
        mean, logvar = model.posterior_parameters(reals, lod, alpha)
        return mean + torch.exp(0.5 * logvar) * epsilon
    return model.encoder_outputs(reals, lod, alpha, eta)


def discriminator_labels(model: LatentAutoencoder, batch: Batch, draws: StepDraws, cfg: Config) -> torch.Tensor | None:
    """The label D sees per image of this rank, int64 [B/W] in [0, K] (K: unlabelled), or None without prior labels."""
    if not model.label_classes:
        return None
    t = cfg.train
    labels = batch.labels.to(torch.int64).clone()  # in [0, K) or NO_LABEL: the loop checked the database's classes
    keep = torch.rand(draws.phase.batch, generator=randomness.generator(t.seed, draws.step, "labelled"))
    unlabelled = (keep[draws.shard.rows] >= t.labelled_fraction) | (labels == NO_LABEL)
    labels[unlabelled] = model.label_classes
    return labels.to(draws.device)


def train_step(model: LatentAutoencoder, optimizers: dict, batch: Batch, phase: Phase, cfg: Config,
               ctx: distributed.Context, step: int) -> LossStats:
    """One AAE iteration (reconstruction, then regularisation) on this rank's share of the global batch."""
    lod, alpha = phase.lod, phase.alpha
    shard, reals, draws = step_inputs(model, batch, phase, cfg, ctx, step)
    labels = discriminator_labels(model, batch, draws, cfg)
    stats: LossStats = {}
    epsilons = {purpose: draws.latents(purpose, "epsilon") for purpose in ("rec", "d", "e")}

    def codes(purpose: str, s: int, e: int) -> torch.Tensor:
        return posterior_codes(model, reals[s:e], lod, alpha, epsilons[purpose][s:e], draws.eta(model, purpose, s, e))

    # 1. Reconstruction phase: E and G.
    set_trainable(model, E=True, G=True, D=False)
    opt = optimizers["autoencoder"]
    opt.zero_grad(set_to_none=True)

    def reconstruction_loss(s: int, e: int):
        raw = model.decode_raw(model.broadcast(codes("rec", s, e)), lod, alpha, draws.noise("rec", s, e))
        loss = cost(raw, reals[s:e], cfg).mean()
        return loss, {"loss_rec": loss.detach()}

    accumulate_gradients(shard, reconstruction_loss, stats)
    optimizer_step(opt, ctx.world_size)

    # 2a. Regularisation phase, D: prior samples are real, codes are fake.
    set_trainable(model, E=False, G=False, D=True)
    opt = optimizers["adversary"]
    opt.zero_grad(set_to_none=True)
    prior = draws.prior(model, "d", labels)

    def discriminator_loss(s: int, e: int):
        y = None if labels is None else labels[s:e]
        with torch.no_grad():
            fake = codes("d", s, e)
        real_logits, fake_logits = model.discriminate(prior[s:e], y), model.discriminate(fake, y)
        loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        return loss, {"loss_d": loss.detach(), "logits_prior": real_logits.detach().mean(),
                      "logits_code": fake_logits.detach().mean()}

    accumulate_gradients(shard, discriminator_loss, stats)
    optimizer_step(opt, ctx.world_size)

    # 2b. Regularisation phase, E as the generator: its codes should pass for prior samples.
    set_trainable(model, E=True, G=False, D=False)
    opt = optimizers["encoder"]
    opt.zero_grad(set_to_none=True)

    def encoder_loss(s: int, e: int):
        y = None if labels is None else labels[s:e]
        loss = F.softplus(-model.discriminate(codes("e", s, e), y)).mean()
        return loss, {"loss_e": loss.detach()}

    accumulate_gradients(shard, encoder_loss, stats)
    optimizer_step(opt, ctx.world_size)
    return stats
