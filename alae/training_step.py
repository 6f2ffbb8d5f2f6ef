"""One ALAE training iteration: the discriminator, generator and latent reconstruction steps.

`train_step` runs the three steps of the paper's Algorithm 1 on this rank's share of a global
batch, drawing every latent, style-mixing choice and noise map from `alae.randomness` by
global sample index, so N ranks compute what one rank computes with the whole batch. The
gradients of each optimizer step are averaged over ranks explicitly. Nothing here reads a
tensor back to the host.
"""
from __future__ import annotations

import torch

from alae import distributed, randomness
from alae.config import Config
from alae.datasets import to_model_range
from alae.layers import downsample2x, upsample2x
from alae.losses import discriminator_loss, generator_loss, latent_loss
from alae.model import ALAE
from alae.schedule import Phase


COMPUTE_DTYPES = {"fp32": None, "bf16": torch.bfloat16}  # train.precision → ALAE.compute_dtype


def make_optimizers(model: ALAE, cfg: Config) -> dict[str, torch.optim.Adam]:
    """Two Adams as in the original code: one for E and D, one for F and G (equalized lr → plain Adam)."""
    t = cfg.train
    # foreach: one multi-tensor update per optimizer instead of a loop over parameters (torch
    # picks it by itself only on CUDA); the same arithmetic.
    kwargs = dict(lr=t.lr_per_lod[0], betas=(t.adam_beta1, t.adam_beta2), eps=t.adam_eps, foreach=True)
    return {
        "encoder_discriminator": torch.optim.Adam([*model.E.parameters(), *model.D.parameters()], **kwargs),
        "mapping_generator": torch.optim.Adam([*model.F.parameters(), *model.G.parameters()], **kwargs),
    }


def set_trainable(model: ALAE, **flags: bool) -> None:
    """set_trainable(model, F=False, G=False, E=True, D=True): which networks collect gradients."""
    for name, flag in flags.items():
        getattr(model, name).requires_grad_(flag)


def fade_reals(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """During a fade-in, blend real images with their downsample-upsample as G blends its output."""
    if alpha >= 1.0:
        return x
    return alpha * x + (1.0 - alpha) * upsample2x(downsample2x(x))


def optimizer_step(optimizer: torch.optim.Optimizer, world_size: int) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    distributed.average_gradients(params, world_size)
    optimizer.step()


def train_step(model: ALAE, optimizers: dict, reals_u8: torch.Tensor, phase: Phase, cfg: Config,
               ctx: distributed.Context, step: int) -> dict[str, torch.Tensor]:
    """One ALAE iteration on this rank's share of the global batch.

    Returns this rank's loss statistics as 0-d tensors on the device (not reduced over ranks,
    never read on the host here): the loop sums them over a tick and reduces them once.
    """
    t = cfg.train
    model.compute_dtype = COMPUTE_DTYPES[t.precision]
    seed, lod, alpha = t.seed, phase.lod, phase.alpha
    local = reals_u8.shape[0]
    first = ctx.rank * local  # global index of this rank's first sample
    rows = slice(first, first + local)
    micro = t.batch_gpu if 0 < t.batch_gpu < local else local
    chunks = [(s, min(s + micro, local)) for s in range(0, local, micro)]
    reals = to_model_range(reals_u8.to(ctx.device, non_blocking=True)).to(model.w_avg.dtype)
    reals = fade_reals(reals, alpha)
    num_active = 2 * (lod + 1)
    shape = (phase.batch, cfg.model.latent_dim)
    noise_shapes = model.G.noise_shapes(lod)

    def draws(purpose: str):
        z1 = randomness.global_normal(shape, rows, seed, step, purpose, "z1").to(ctx.device)
        z2 = randomness.global_normal(shape, rows, seed, step, purpose, "z2").to(ctx.device)
        cross = randomness.crossover_layers(phase.batch, rows, num_active, t.style_mixing_prob, seed, step, purpose,
                                            "mix", per_batch=t.style_mixing == "per_batch").to(ctx.device)
        return z1, z2, cross

    def noise(purpose: str, s: int, e: int):
        maps = randomness.per_sample_noise(noise_shapes, range(first + s, first + e), ctx.device,
                                           seed, step, purpose, "noise")
        if t.first_noise == "per_batch":  # the original's: its 4x4 constant has batch 1 at the first noise
            shared = randomness.global_normal((1, *noise_shapes[0]), slice(None), seed, step, purpose, "noise0")
            maps[0] = shared.to(ctx.device).expand(e - s, -1, -1, -1)
        return maps

    w_sum = torch.zeros(cfg.model.latent_dim, device=ctx.device)

    def update_w_avg():
        """Move w_avg toward the global batch mean of the w summed into w_sum since the last update."""
        w_mean = w_sum / local
        distributed.all_reduce_mean_([w_mean], ctx.world_size)
        model.update_w_avg(w_mean[None], t.w_avg_beta)
        w_sum.zero_()

    every_step = t.w_avg_updates == "every_step"  # the original's: one update per generate call

    stats: dict[str, torch.Tensor] = {}

    def accumulate(new: dict, weight: float):
        for k, v in new.items():
            stats[k] = stats.get(k, 0.0) + v * weight

    # 1. Discriminator step: E and D learn to tell real images from generated ones (+ R1 on reals).
    set_trainable(model, F=False, G=False, E=True, D=True)
    opt = optimizers["encoder_discriminator"]
    opt.zero_grad(set_to_none=True)
    r1_weight = t.r1_gamma / 2 * t.r1_interval if step % t.r1_interval == 0 else 0.0
    z1, z2, cross = draws("d")
    for s, e in chunks:
        with torch.no_grad():
            w1 = model.map(z1[s:e])
            if every_step:
                w_sum += w1.sum(0)
            styles = model.crossover_styles(w1, model.map(z2[s:e]), cross[s:e], lod)
            fakes = model.generate(styles, lod, alpha, noise=noise("d", s, e))
        loss, new = discriminator_loss(model, reals[s:e], fakes, lod, alpha, r1_weight)
        (loss * (e - s) / local).backward()
        accumulate(new, (e - s) / local)
    optimizer_step(opt, ctx.world_size)
    if every_step:
        update_w_avg()

    # 2. Generator step: F and G learn to make images D (through E) calls real.
    set_trainable(model, F=True, G=True, E=False, D=False)
    opt = optimizers["mapping_generator"]
    opt.zero_grad(set_to_none=True)
    z1, z2, cross = draws("g")
    for s, e in chunks:
        w1 = model.map(z1[s:e])
        w_sum += w1.detach().sum(0)
        styles = model.crossover_styles(w1, model.map(z2[s:e]), cross[s:e], lod)
        loss, new = generator_loss(model, styles, lod, alpha, noise("g", s, e))
        (loss * (e - s) / local).backward()
        accumulate(new, (e - s) / local)
    optimizer_step(opt, ctx.world_size)
    update_w_avg()

    # 3. Latent reconstruction step: E(G(w)) ≈ w. The original code also steps F here (option).
    set_trainable(model, F=t.latent_step_updates_mapping, G=True, E=True, D=False)
    for opt in optimizers.values():
        opt.zero_grad(set_to_none=True)
    z1 = randomness.global_normal(shape, rows, seed, step, "latent", "z1").to(ctx.device)
    for s, e in chunks:
        w = model.map(z1[s:e])
        if every_step:
            w_sum += w.detach().sum(0)
        loss, new = latent_loss(model, w, lod, alpha, noise("latent", s, e))
        (loss * (e - s) / local).backward()
        accumulate(new, (e - s) / local)
    for opt in optimizers.values():
        optimizer_step(opt, ctx.world_size)
    if every_step:
        update_w_avg()

    return stats
