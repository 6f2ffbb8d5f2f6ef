"""The VAE objective (Kingma & Welling 2014): maximise the evidence lower bound.

E gives the posterior's mean μ(x) and log-variance log σ²(x); z = μ + σ·ε with ε ~ N(0, I)
(reparameterised); loss = −log p(x | z) + β·KL(q(z|x) ‖ N(0, I)) per image, averaged over the
batch, with the KL in closed form and β = `vae.kl_weight` (1: the ELBO itself). One Adam step
per iteration on E and G. Reported per image, in nats: `nll`, `kl`, `elbo` = −(nll + kl) (the
bound itself, whatever β), and `loss_vae`. Options: the config's `vae` section (`Options`).
"""
from __future__ import annotations

from typing import Literal

import torch

import alae.distributed as distributed
from alae.config import Config, NonNegativeFloat, ObjectiveOptions, PositiveFloat, Traits, section
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
from alae.likelihoods import gaussian_kl
from alae.training.schedule import Phase


@section
class Options(ObjectiveOptions):
    """The `vae` section."""

    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"  # p(x|z) on [0, 1] pixels: bernoulli (pytorch/examples) | gaussian
    likelihood_std: PositiveFloat = 0.1  # gaussian likelihood: σ in [0, 1] pixel units (ours)
    kl_weight: NonNegativeFloat = 1.0  # β on the KL term (Kingma & Welling: 1)

    def traits(self) -> Traits:
        """A Gaussian posterior and a likelihood (so an ELBO); a Bernoulli likelihood's G emits logits."""
        return Traits(posterior="gaussian", likelihood=self.likelihood,
                      likelihood_std=self.likelihood_std if self.likelihood == "gaussian" else 0.0,
                      decoder_output="sigmoid" if self.likelihood == "bernoulli" else "linear")


make_optimizers = autoencoder_optimizers  # one Adam on E and G


def vae_loss(model: LatentAutoencoder, reals: torch.Tensor, epsilon: torch.Tensor, lod: int, alpha: float, noise,
             cfg: Config) -> tuple[torch.Tensor, LossStats]:
    """reals [N, C, R, R] in [−1, 1], epsilon [N, latent] ~ N(0, I) → (the batch-mean loss, statistics)."""
    mean, logvar = model.posterior_parameters(reals, lod, alpha)
    z = mean + torch.exp(0.5 * logvar) * epsilon
    nll = model.negative_log_likelihood(model.decode_raw(model.broadcast(z), lod, alpha, noise), reals)
    kl = gaussian_kl(mean, logvar)
    loss = (nll + cfg.objective.kl_weight * kl).mean()
    return loss, {"loss_vae": loss.detach(), "nll": nll.detach().mean(), "kl": kl.detach().mean(),
                  "elbo": -(nll + kl).detach().mean()}


def train_step(model: LatentAutoencoder, optimizers: dict, batch: Batch, phase: Phase, cfg: Config,
               ctx: distributed.Context, step: int) -> LossStats:
    """One VAE step on this rank's share of the global batch; statistics as 0-d device tensors."""
    shard, reals, draws = step_inputs(model, batch, phase, cfg, ctx, step)
    stats: LossStats = {}
    set_trainable(model, E=True, G=True)
    opt = optimizers["autoencoder"]
    opt.zero_grad(set_to_none=True)
    epsilon = draws.latents("vae", "epsilon")
    accumulate_gradients(shard, lambda s, e: vae_loss(model, reals[s:e], epsilon[s:e], phase.lod, phase.alpha,
                                                      draws.noise("vae", s, e), cfg), stats)
    optimizer_step(opt, ctx.world_size)
    return stats
