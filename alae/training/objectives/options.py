"""Option groups that several objectives' sections share: the prior of the codes, the
reconstruction cost, the adversary's learning rate. An objective's `Options` inherits the groups
it uses (the fields land in its own section: `wae_mmd.prior`, `aae.reconstruction_weight`).
"""
from __future__ import annotations

from typing import Literal

from alae.config import NonNegativeFloat, PositiveFloat, PositiveInt, require, section


@section
class CodePrior:
    """The prior p(z) the codes are matched to (alae.priors)."""

    prior: Literal["gaussian", "mixture", "swiss_roll"] = "gaussian"  # mixture: K Gaussians on a circle; swiss_roll: 2-D
    prior_components: PositiveInt = 10  # mixture, swiss_roll: K (AAE paper: 10)

    def check_prior(self, cfg, objective: str) -> None:
        """The prior against the code size (ConfigError naming the fields)."""
        latent = cfg.model.latent_dim
        require(self.prior != "swiss_roll" or latent == 2, f"{objective}.prior/model.latent_dim",
                f"the swiss_roll prior is 2-D; model.latent_dim is {latent}")
        require(self.prior != "mixture" or latent >= 2, f"{objective}.prior/model.latent_dim",
                "the mixture prior places its components in a plane: model.latent_dim must be >= 2")

    def prior_traits(self) -> dict:
        """The Traits fields of the prior."""
        components = self.prior_components if self.prior != "gaussian" else 0
        return {"prior": self.prior, "prior_components": components}


@section
class ReconstructionCost:
    """c(x, G(code)) of the autoencoding objectives (reconstruction.cost), on [0, 1] pixels."""

    reconstruction: Literal["squared_error", "cross_entropy"] = "squared_error"  # ‖x − y‖² (WAE) | cross-entropy of G's logits
    reconstruction_weight: NonNegativeFloat = 1.0  # factor on c (WAE authors' code, l2sq on MNIST: 0.05)

    @property
    def decoder_output(self) -> str:
        """G's output: the logit of a [0, 1] pixel for the cross-entropy, else the pixel in [−1, 1]."""
        return "sigmoid" if self.reconstruction == "cross_entropy" else "linear"


@section
class Adversary:
    """The learning rate of an adversary on codes."""

    adversary_lr_mul: PositiveFloat = 1.0  # D's learning rate over the others' (WAE MNIST: 5e-4 / 1e-3)
