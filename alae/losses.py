"""The three ALAE losses (non-saturating logistic, `softplus`), per micro-batch, as batch means.

- discriminator step (E and D learn): softplus(D(E(fake))) + softplus(−D(E(real)))
  + γ/2·‖∇_x D(E(x_real))‖² (R1; γ = 10 in the original code), the R1 term scaled by the lazy
  interval when it is applied only every few steps;
- generator step (F and G learn): softplus(−D(E(G(styles))));
- latent reconstruction step: ‖E(G(w)) − w‖² averaged over batch and latent dimensions, with
  w = F(z) detached as the target (the gradient reaches F, if it learns here, through G only).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss(model, reals: torch.Tensor, fakes: torch.Tensor, lod: int, alpha: float,
                       r1_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """reals, fakes: [N, C, R, R] in [−1, 1]; r1_weight = γ/2 × interval (0 disables R1)."""
    reals = reals.detach().requires_grad_(r1_weight > 0)
    real_logits = model.discriminate(model.encode(reals, lod, alpha))
    fake_logits = model.discriminate(model.encode(fakes.detach(), lod, alpha))
    loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    stats = {"loss_d": loss.detach(), "logits_real": real_logits.detach().mean(),
             "logits_fake": fake_logits.detach().mean()}
    if r1_weight > 0:
        (grad,) = torch.autograd.grad(real_logits.sum(), reals, create_graph=True)
        r1 = grad.square().sum(dim=[1, 2, 3]).mean()
        loss = loss + r1_weight * r1
        stats["r1"] = r1.detach()
    return loss, stats


def generator_loss(model, styles: torch.Tensor, lod: int, alpha: float, noise) -> tuple[torch.Tensor, dict]:
    """styles: [N, layers, latent] (mixed); the generator wants D to call its images real."""
    logits = model.discriminate(model.encode(model.generate(styles, lod, alpha, noise=noise), lod, alpha))
    loss = F.softplus(-logits).mean()
    return loss, {"loss_g": loss.detach()}


def latent_loss(model, w: torch.Tensor, lod: int, alpha: float, noise) -> tuple[torch.Tensor, dict]:
    """w: [N, latent] from F; the encoder must recover it from the image G makes of it."""
    recovered = model.encode(model.generate(model.broadcast(w), lod, alpha, noise=noise), lod, alpha)
    loss = (recovered - w.detach()).square().mean()
    return loss, {"loss_latent": loss.detach()}
