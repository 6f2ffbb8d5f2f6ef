"""The divergence between codes and the prior that WAE-MMD adds to its loss: differentiable, in
the inputs' dtype (float32 or float64). (The VAE's KL and likelihoods: alae.likelihoods.)

- imq_mmd(z_q [n, d], z_p [m, d], base_c) → scalar: the WAE-MMD penalty as the WAE authors' code
  computes it (tolstikhin/wae, wae.py `mmd_penalty`, IMQ branch), generalised to n ≠ m: for each
  scale s, C = base_c·s and k(x, y) = C / (C + ‖x − y‖²) (the squared distance);
  MMD_s = Σ_{l≠j} k(z_q,l, z_q,j)/(n(n − 1)) + Σ_{l≠j} k(z_p,l, z_p,j)/(m(m − 1))
        − 2/(n·m)·Σ_{l,j} k(z_q,l, z_p,j), and the penalty is Σ_s MMD_s (the unbiased estimate
  of the squared MMD at each scale). Callers pass base_c = 2·d·σ², σ² the prior's variance per
  coordinate (the authors' C = 2·zdim·pz_scale²). The squared distances are computed as the
  authors do, ‖x‖² + ‖y‖² − 2⟨x, y⟩ (memory n·m rather than n·m·d).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

WAE_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # tolstikhin/wae wae.py, mmd_penalty (IMQ)


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
