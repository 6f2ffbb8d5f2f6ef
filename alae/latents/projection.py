"""Encoder-initialised projection: refine an image's W+ latents so G reproduces it more closely.

ALAE's encoder gives one w per image in a single pass; the reconstruction keeps the face's
layout but not always its identity. Refinement starts from W+ = [E(x)] × layers and takes N
Adam steps on all style layers against the pixel MSE (plus LPIPS when weights are given), the
noise maps held fixed. The learning-rate schedule is StyleGAN2's projector's: a linear warm-up
over the first 5% of steps and a cosine ramp-down over the last 25%.

Each image's latents see only that image's loss (the batch loss is a sum over images and Adam
is element-wise), so results do not depend on how images are batched.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

RAMP_UP = 0.05  # StyleGAN2 projector: lr_rampup_length
RAMP_DOWN = 0.25  # StyleGAN2 projector: lr_rampdown_length
DEFAULT_LR = 0.1  # StyleGAN2 projector's initial_learning_rate; the best of 0.003-0.1 on the demo (docs/TOOLS.md)


@dataclass
class RefineSettings:
    """steps: Adam steps (0 = none); lr: peak learning rate; lpips: an LPIPS module or None;
    lpips_weight: its weight against the pixel MSE (images in [−1, 1])."""

    steps: int = 0
    lr: float = DEFAULT_LR
    lpips: torch.nn.Module | None = None
    lpips_weight: float = 1.0


def learning_rate(step: int, steps: int, peak: float) -> float:
    """StyleGAN2's projector schedule at `step` of `steps` (0-based), shifted so that neither the
    first nor the last step has a zero rate."""
    down = min(1.0, (1.0 - step / steps) / RAMP_DOWN)
    down = 0.5 - 0.5 * math.cos(down * math.pi)
    return peak * down * min(1.0, (step + 1) / (steps * RAMP_UP))


def per_image_loss(model, styles: torch.Tensor, target: torch.Tensor, lod: int, noise,
                   settings: RefineSettings) -> torch.Tensor:
    """[N] losses: mean squared pixel error (+ lpips_weight · LPIPS) of G(styles) against target."""
    images = model.generate(styles, lod, 1.0, noise)
    loss = (images - target).square().flatten(1).mean(dim=1)
    if settings.lpips is not None:
        loss = loss + settings.lpips_weight * settings.lpips(images, target)
    return loss


def refine_wplus(model, target: torch.Tensor, styles: torch.Tensor, lod: int, noise, settings: RefineSettings,
                 on_step=None) -> torch.Tensor:
    """W+ [N, L, latent] after `settings.steps` Adam steps from `styles`, for target images
    [N, C, R, R] in [−1, 1] at `lod`; `on_step(step, losses [N])` is called after each step."""
    wplus = styles.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([wplus], lr=settings.lr, betas=(0.9, 0.999))
    for step in range(settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, settings.steps, settings.lr)
        losses = per_image_loss(model, wplus, target, lod, noise, settings)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        if on_step is not None:
            on_step(step, losses.detach())
    return wplus.detach()
