"""What every objective's step shares: optimizer steps with gradient clipping."""
import copy

import torch

from alae.config import load_config
from alae.training.objectives.common import adam, optimizer_step


def test_gradients_are_clipped_to_the_configured_global_norm_per_optimizer():
    """g·min(1, clip/‖g‖) over all of the optimizer's gradients together (musyoku's GradientClipping)."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(7))]
    for clip in (0.0, 0.5, 1e6):
        cfg = load_config("mnist-vae", [f"train.gradient_clip={clip}"])
        copies = [copy.deepcopy(p) for p in params]
        grads = [torch.randn_like(p) * 3 for p in params]
        for p, g in zip(copies, grads):
            p.grad = g.clone()
        optimizer = adam(copies, cfg)
        optimizer_step(optimizer, world_size=1)
        norm = torch.sqrt(sum(g.double().square().sum() for g in grads))
        scale = min(1.0, clip / norm.item()) if clip else 1.0
        for p, g in zip(copies, grads):
            torch.testing.assert_close(p.grad.double(), g.double() * scale, rtol=1e-6, atol=1e-7)
