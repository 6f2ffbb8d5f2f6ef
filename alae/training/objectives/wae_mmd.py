"""WAE-MMD (Tolstikhin et al. 2018, arXiv 1711.01558): minimise c(x, G(E(x))) + λ·MMD(q(z), p(z)).

A deterministic encoder; per micro-batch the mean cost (`reconstruction.cost`) plus λ =
`wae_mmd.penalty_weight` times the multi-scale inverse-multiquadratic MMD between the batch's codes
and as many prior samples, C = 2·d·σ²·s over `wae_mmd.mmd_scales` (the authors' code;
`divergences.imq_mmd`). σ² is the prior's variance per coordinate (1 for N(0, I)). The MMD is
not a mean over images, so it is estimated on each micro-batch of each rank: with
`train.batch_gpu` or several ranks the estimate is of the same MMD from smaller sets (it is
unbiased either way), not the same number; its within-set sums need two codes per micro-batch.
One Adam on E and G. Options: the config's `wae_mmd` section (`Options`).
"""
from __future__ import annotations

from pydantic import Field

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
from alae.training.objectives import pretraining
from alae.training.objectives.divergences import imq_mmd
from alae.training.objectives.options import CodePrior, ReconstructionCost, WAEEncoder
from alae.training.objectives.reconstruction import cost
from alae.training.schedule import Phase


@section
class Options(CodePrior, ReconstructionCost, WAEEncoder, ObjectiveOptions):
    """The `wae_mmd` section (and the prior and reconstruction cost groups)."""

    penalty_weight: NonNegativeFloat = 10.0  # λ (WAE paper and code, MNIST: 10)
    mmd_scales: list[PositiveFloat] = Field(default_factory=lambda: [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0],
                                            min_length=1)  # WAE code

    def check(self, cfg: Config) -> None:
        self.check_prior(cfg, "wae_mmd")
        self.check_reconstruction("wae_mmd")

    def traits(self) -> Traits:
        """A deterministic encoder; no adversary; the MMD needs two codes per micro-batch."""
        return Traits(decoder_output=self.output, min_micro_batch=2, **self.prior_traits())


pretrain = pretraining.pretrain  # with pretrain_steps: the WAE code's encoder start
make_optimizers = autoencoder_optimizers  # one Adam on E and G


def prior_variance(model: LatentAutoencoder) -> float:
    """σ²: the prior's mean variance per coordinate (the kernel's scale C = 2·d·σ²)."""
    return float(model.prior.covariance().diagonal().mean())


def train_step(model: LatentAutoencoder, optimizers: dict, batch: Batch, phase: Phase, cfg: Config,
               ctx: distributed.Context, step: int) -> LossStats:
    """One WAE-MMD step on this rank's share of the global batch; statistics as 0-d device tensors."""
    o, lod, alpha = cfg.objective, phase.lod, phase.alpha
    shard, reals, draws = step_inputs(model, batch, phase, cfg, ctx, step)
    base_c = 2 * model.latent_dim * prior_variance(model)
    stats: LossStats = {}
    set_trainable(model, E=True, G=True)
    opt = optimizers["autoencoder"]
    opt.zero_grad(set_to_none=True)
    prior = draws.prior(model, "mmd")

    def loss(s: int, e: int):
        codes = model.encode(o.noisy_images(reals[s:e], draws, "mmd", s, e), lod, alpha)
        raw = model.decode_raw(model.broadcast(codes), lod, alpha, draws.noise("mmd", s, e))
        rec = cost(model, raw, reals[s:e], o).mean()
        mmd = imq_mmd(codes, prior[s:e], base_c, tuple(o.mmd_scales))
        total = rec + o.penalty_weight * mmd
        return total, {"loss_wae": total.detach(), "loss_rec": rec.detach(), "mmd": mmd.detach()}

    accumulate_gradients(shard, loss, stats)
    optimizer_step(opt, ctx.world_size)
    return stats
