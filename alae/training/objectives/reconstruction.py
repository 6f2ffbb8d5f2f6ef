"""How far G's output is from the real images, per image, for the autoencoding objectives.

Pixels are compared in [0, 1] (x01 = (x + 1)/2 of the model's [−1, 1] range). G's raw output is
the pixel in [−1, 1] for a linear output and its logit for a sigmoid one (`model.output`).

- VAE, `train.likelihood`: −log p(x | z), summed over pixels and channels: Bernoulli (the
  binary cross-entropy of the logits; pytorch/examples' VAE on grey levels) or Gaussian with
  σ = `train.likelihood_std` (the normalising constant included, so the ELBO is a log density).
- AAE and WAE, `train.reconstruction`: the cost c(x, y) times `train.reconstruction_weight`:
  the squared error Σ(x01 − y01)² (WAE's c = ‖x − y‖²) or the cross-entropy of the logits.
"""
from __future__ import annotations

import torch

import alae.likelihoods as likelihoods
from alae.config import Config
from alae.likelihoods import bernoulli_nll, pixels01


def negative_log_likelihood(raw: torch.Tensor, reals: torch.Tensor, cfg: Config) -> torch.Tensor:
    """−log p(reals | z) [N] in nats for G's raw output `raw` and real images `reals` ([−1, 1]), both [N, C, R, R]."""
    return likelihoods.negative_log_likelihood(raw, reals, cfg.train.likelihood, cfg.train.likelihood_std)


def cost(raw: torch.Tensor, reals: torch.Tensor, cfg: Config) -> torch.Tensor:
    """reconstruction_weight · c(reals, G's output) [N]."""
    t = cfg.train
    if t.reconstruction == "cross_entropy":
        c = bernoulli_nll(raw, pixels01(reals))
    else:
        c = (pixels01(raw) - pixels01(reals)).square().flatten(1).sum(dim=1)
    return t.reconstruction_weight * c
