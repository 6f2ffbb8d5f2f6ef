"""Option groups that several objectives' sections share: the prior of the codes, the
reconstruction cost, an adversary on codes, the WAE code's treatment of its encoder. An
objective's `Options` inherits the groups it uses (the fields land in its own section:
`wae_mmd.prior`, `aae.reconstruction_weight`).
"""
from __future__ import annotations

from typing import Literal

import torch

from alae.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, require, section


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
    """c(x, G(code)) of the autoencoding objectives (reconstruction.cost), on [0, 1] pixels, and how
    G's output becomes pixels."""

    reconstruction: Literal["squared_error", "cross_entropy"] = "squared_error"  # ‖x − y‖² (WAE) | cross-entropy of G's logits
    reconstruction_weight: NonNegativeFloat = 1.0  # factor on c (WAE authors' code, l2sq on MNIST: 0.05)
    # G's output: linear (the pixel, in model.pixel_range), sigmoid (the WAE code's decoder on [0, 1]
    # data), tanh (musyoku's AAE on [-1, 1] data); auto: sigmoid for the cross-entropy, else linear.
    decoder_output: Literal["auto", "linear", "sigmoid", "tanh"] = "auto"

    def check_reconstruction(self, objective: str) -> None:
        """The cross-entropy needs G's logits."""
        require(self.reconstruction != "cross_entropy" or self.decoder_output in ("auto", "sigmoid"),
                f"{objective}.decoder_output", f"the cross-entropy compares G's logits: it needs a sigmoid output, "
                                               f"got {self.decoder_output!r}")

    @property
    def output(self) -> str:
        """G's output (Traits.decoder_output): decoder_output with auto resolved."""
        if self.decoder_output != "auto":
            return self.decoder_output
        return "sigmoid" if self.reconstruction == "cross_entropy" else "linear"


@section
class Adversary:
    """An adversary on codes: its learning rate, and noise on its inputs."""

    adversary_lr_mul: PositiveFloat = 1.0  # D's learning rate over the others' (WAE MNIST: 5e-4 / 1e-3)
    # σ of the Gaussian noise added to every code an adversary judges while training, the prior's and
    # E's alike (musyoku's AAE: 0.3, "noise on D's input stabilizes"); 0: none
    adversary_input_noise: NonNegativeFloat = 0.0

    def noisy(self, codes: torch.Tensor, draws, purpose: str, name: str, s: int, e: int) -> torch.Tensor:
        """codes [e − s, d] (this rank's rows s:e of a step) plus adversary_input_noise · N(0, 1), drawn
        per global index by (seed, step, purpose, name) (`StepDraws.normal`); the codes themselves without noise."""
        if not self.adversary_input_noise:
            return codes
        return codes + self.adversary_input_noise * draws.normal(purpose, name, codes.shape[1])[s:e].to(codes.dtype)


@section
class WAEEncoder:
    """What the WAE code (tolstikhin/wae) does to its encoder: noise on the images it encodes while
    training, and a start (`pretraining.match_prior_moments`) where E alone learns codes with the
    prior's mean and covariance."""

    # σ, in [0, 1] pixel units, of the Gaussian noise added to the images E encodes while training
    # (WAE code, e_noise add_noise: 0.01, truncated at 2σ there); 0: none
    encoder_input_noise: NonNegativeFloat = 0.0
    pretrain_steps: NonNegativeInt = 0  # WAE code (e_pretrain): up to 200 steps before training; 0: none
    pretrain_batch: PositiveInt = 1000  # WAE code: e_pretrain_sample_size (MNIST)
    pretrain_stop: NonNegativeFloat = 0.1  # WAE code: stops once the moment loss is below 0.1

    def noisy_images(self, reals: torch.Tensor, draws, purpose: str, s: int, e: int) -> torch.Tensor:
        """reals [e − s, C, R, R] in [−1, 1] (this rank's rows s:e) plus encoder_input_noise · N(0, 1)
        in [0, 1] units (2σ in [−1, 1]), drawn per global index (`StepDraws.normal`)."""
        if not self.encoder_input_noise:
            return reals
        noise = draws.normal(purpose, "input-noise", reals[0].numel())[s:e].view_as(reals)
        return reals + 2 * self.encoder_input_noise * noise.to(reals.dtype)
