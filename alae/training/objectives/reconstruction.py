"""The reconstruction cost of the autoencoding objectives (AAE, WAE): how far G's output is
from the real images, per image.

Pixels are compared in [0, 1] (x01 = (x + 1)/2 of the model's [−1, 1] images). The cost
(`options.ReconstructionCost`) is `reconstruction_weight` times the squared error Σ(x01 − y01)²
(WAE's c = ‖x − y‖²) of G's image (`model.image_of` its raw output) or the cross-entropy of its
raw output, the logits of a sigmoid output, summed over pixels and channels. (The VAE's −log p(x|z)
is `LatentAutoencoder.negative_log_likelihood`.)
"""
from __future__ import annotations

import torch

from alae.likelihoods import bernoulli_nll, pixels01
from alae.model import LatentAutoencoder
from alae.training.objectives.options import ReconstructionCost


def cost(model: LatentAutoencoder, raw: torch.Tensor, reals: torch.Tensor, options: ReconstructionCost) -> torch.Tensor:
    """reconstruction_weight · c(reals, G's output) [N] for G's raw output `raw` and real images
    `reals` ([−1, 1]), both [N, C, R, R]."""
    if options.reconstruction == "cross_entropy":
        c = bernoulli_nll(raw, pixels01(reals))
    else:
        c = (pixels01(model.image_of(raw)) - pixels01(reals)).square().flatten(1).sum(dim=1)
    return options.reconstruction_weight * c
