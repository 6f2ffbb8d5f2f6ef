"""The reconstruction cost of the autoencoding objectives (AAE, WAE): how far G's output is
from the real images, per image.

Pixels are compared in [0, 1] (x01 = (x + 1)/2 of the model's [−1, 1] range). G's raw output is
the pixel in [−1, 1] for a linear output and its logit for a sigmoid one (`model.output`). The
cost (`options.ReconstructionCost`) is `reconstruction_weight` times the squared error
Σ(x01 − y01)² (WAE's c = ‖x − y‖²) or the cross-entropy of the logits, summed over pixels and
channels. (The VAE's −log p(x|z) is `alae.likelihoods.negative_log_likelihood`.)
"""
from __future__ import annotations

import torch

from alae.likelihoods import bernoulli_nll, pixels01
from alae.training.objectives.options import ReconstructionCost


def cost(raw: torch.Tensor, reals: torch.Tensor, options: ReconstructionCost) -> torch.Tensor:
    """reconstruction_weight · c(reals, G's output) [N] for G's raw output `raw` and real images
    `reals` ([−1, 1]), both [N, C, R, R]."""
    if options.reconstruction == "cross_entropy":
        c = bernoulli_nll(raw, pixels01(reals))
    else:
        c = (pixels01(raw) - pixels01(reals)).square().flatten(1).sum(dim=1)
    return options.reconstruction_weight * c
