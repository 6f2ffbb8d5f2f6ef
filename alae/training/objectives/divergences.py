"""The terms the latent-autoencoder objectives add up, per sample or per batch: differentiable, in
the inputs' dtype (float32 or float64), in nats.

- gaussian_kl(mean, logvar) [N, d] → [N]: KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_d (μ² + σ² − log σ² − 1)
  (Kingma & Welling 2014, arXiv 1312.6114, appendix B).
- imq_mmd(z_q [n, d], z_p [m, d], base_c) → scalar: the WAE-MMD penalty as the WAE authors' code
  computes it (tolstikhin/wae, wae.py `mmd_penalty`, IMQ branch), generalised to n ≠ m: for each
  scale s, C = base_c·s and k(x, y) = C / (C + ‖x − y‖²) (the squared distance);
  MMD_s = Σ_{l≠j} k(z_q,l, z_q,j)/(n(n − 1)) + Σ_{l≠j} k(z_p,l, z_p,j)/(m(m − 1))
        − 2/(n·m)·Σ_{l,j} k(z_q,l, z_p,j), and the penalty is Σ_s MMD_s (the unbiased estimate
  of the squared MMD at each scale). Callers pass base_c = 2·d·σ², σ² the prior's variance per
  coordinate (the authors' C = 2·zdim·pz_scale²). The squared distances are computed as the
  authors do, ‖x‖² + ‖y‖² − 2⟨x, y⟩ (memory n·m rather than n·m·d).
- bernoulli_nll(logits, targets) [N, ...] → [N]: −log p(x | ℓ) = Σ −x·log σ(ℓ) − (1 − x)·log(1 − σ(ℓ))
  for targets x in [0, 1] (grey levels allowed, as pytorch/examples' VAE, for which this is a
  cross-entropy rather than a normalised likelihood), from the logits ℓ (numerically stable).
- gaussian_nll(mean, targets, std) [N, ...] → [N]: −log N(x; μ, σ²·I) = Σ (x − μ)²/(2σ²) + ½·log(2πσ²)
  (σ = std > 0).
The per-sample terms sum over every dimension but the first.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

WAE_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # tolstikhin/wae wae.py, mmd_penalty (IMQ)


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """mean, logvar [N, d] (log σ²) → KL(N(mean, diag exp(logvar)) ‖ N(0, I)) [N]."""
    return 0.5 * (mean.square() + logvar.exp() - logvar - 1).sum(dim=1)


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [n, d], b [m, d] → ‖a_l − b_j‖² [n, m], as ‖a_l‖² + ‖b_j‖² − 2⟨a_l, b_j⟩."""
    return a.square().sum(dim=1)[:, None] + b.square().sum(dim=1)[None, :] - 2 * a @ b.T


def imq_mmd(z_q: torch.Tensor, z_p: torch.Tensor, base_c: float, scales: Sequence[float] = WAE_SCALES) -> torch.Tensor:
    """Codes z_q [n, d] and prior samples z_p [m, d] (n, m >= 2) → Σ_s MMD_s, 0-d (module docstring)."""
    n, m = z_q.shape[0], z_p.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"imq_mmd needs at least 2 codes and 2 prior samples, got {n} and {m}")
    qq, pp, qp = _squared_distances(z_q, z_q), _squared_distances(z_p, z_p), _squared_distances(z_q, z_p)
    off_q = 1 - torch.eye(n, dtype=z_q.dtype, device=z_q.device)
    off_p = 1 - torch.eye(m, dtype=z_p.dtype, device=z_p.device)
    total = z_q.new_zeros(())
    for s in scales:
        c = base_c * s
        within_q = (c / (c + qq) * off_q).sum() / (n * (n - 1))
        within_p = (c / (c + pp) * off_p).sum() / (m * (m - 1))
        total = total + within_q + within_p - (c / (c + qp)).sum() * 2 / (n * m)
    return total


def bernoulli_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """logits, targets [N, ...] (targets in [0, 1]) → −log p(targets | logits) [N]."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1).sum(dim=1)


def gaussian_nll(mean: torch.Tensor, targets: torch.Tensor, std: float) -> torch.Tensor:
    """mean, targets [N, ...] → −log N(targets; mean, std²·I) [N], the constant included (std > 0)."""
    if not std > 0:
        raise ValueError(f"gaussian_nll needs std > 0, got {std}")
    per_value = (targets - mean).square() / (2 * std**2) + 0.5 * math.log(2 * math.pi * std**2)
    return per_value.flatten(1).sum(dim=1)
