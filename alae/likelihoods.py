"""The likelihood terms of latent-variable models, per image, in nats: differentiable, in the
inputs' dtype (float32 or float64). Used by the VAE objective and by the ELBO metrics.

- gaussian_kl(mean, logvar) [N, d] → [N]: KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_d (μ² + σ² − log σ² − 1)
  (Kingma & Welling 2014, arXiv 1312.6114, appendix B).
- bernoulli_nll(logits, targets) [N, ...] → [N]: −log p(x | ℓ) = Σ −x·log σ(ℓ) − (1 − x)·log(1 − σ(ℓ))
  for targets x in [0, 1] (grey levels allowed, as pytorch/examples' VAE, for which this is a
  cross-entropy rather than a normalised likelihood), from the logits ℓ (numerically stable).
- gaussian_nll(mean, targets, std) [N, ...] → [N]: −log N(x; μ, σ²·I) = Σ (x − μ)²/(2σ²) + ½·log(2πσ²)
  (σ = std > 0).
- negative_log_likelihood(raw, reals, likelihood, std): −log p(x | z) of a model's raw output
  for images in the model's range [−1, 1], compared in [0, 1] (`pixels01`).
The per-sample terms sum over every dimension but the first.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LIKELIHOODS = ("bernoulli", "gaussian")


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """mean, logvar [N, d] (log σ²) → KL(N(mean, diag exp(logvar)) ‖ N(0, I)) [N]."""
    return 0.5 * (mean.square() + logvar.exp() - logvar - 1).sum(dim=1)


def bernoulli_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """logits, targets [N, ...] (targets in [0, 1]) → −log p(targets | logits) [N]."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1).sum(dim=1)


def gaussian_nll(mean: torch.Tensor, targets: torch.Tensor, std: float) -> torch.Tensor:
    """mean, targets [N, ...] → −log N(targets; mean, std²·I) [N], the constant included (std > 0)."""
    if not std > 0:
        raise ValueError(f"gaussian_nll needs std > 0, got {std}")
    per_value = (targets - mean).square() / (2 * std**2) + 0.5 * math.log(2 * math.pi * std**2)
    return per_value.flatten(1).sum(dim=1)


def pixels01(x: torch.Tensor) -> torch.Tensor:
    """Images in the model's range [−1, 1] → [0, 1]."""
    return (x + 1) / 2


def negative_log_likelihood(raw: torch.Tensor, reals: torch.Tensor, likelihood: str, std: float) -> torch.Tensor:
    """−log p(reals | z) [N] in nats for G's raw output `raw` (the logits for 'bernoulli', the
    pixels in [−1, 1] for 'gaussian' with σ = std in [0, 1] units) and real images `reals` in
    [−1, 1], both [N, C, R, R]."""
    if likelihood == "bernoulli":
        return bernoulli_nll(raw, pixels01(reals))
    if likelihood == "gaussian":
        return gaussian_nll(pixels01(raw), pixels01(reals), std)
    raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {likelihood!r}")
