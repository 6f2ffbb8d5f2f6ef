"""What every objective's step shares: this rank's shard of a global batch and the random draws
of a step, gradient accumulation over its micro-batches, optimizer steps averaged over ranks,
trainable flags, the real images (faded during a fade-in).

A step works on the rows [first, first + size) of the global batch that are this rank's; each
micro-batch's loss is backpropagated scaled by its share of the shard, so the accumulated
gradient is the shard's mean whatever `train.batch_gpu` is, and the explicit all-reduce in
`optimizer_step` makes it the global batch's mean.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable

import torch

import alae.distributed as distributed
import alae.randomness as randomness
from alae.config import Config
from alae.datasets import to_model_range
from alae.model import LatentAutoencoder
from alae.networks.layers import downsample2x, upsample2x
from alae.training.data import Batch
from alae.training.schedule import Phase


@dataclass(frozen=True)
class Shard:
    """This rank's rows of a global batch: global indices [first, first + size), in micro-batches
    (start, end) of local indices, each at most `train.batch_gpu` long (0: one micro-batch)."""

    first: int
    size: int
    micro_batches: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, size: int, rank: int, batch_gpu: int) -> "Shard":
        micro = batch_gpu if 0 < batch_gpu < size else size
        return cls(rank * size, size, tuple((s, min(s + micro, size)) for s in range(0, size, micro)))

    @property
    def rows(self) -> slice:
        """This rank's rows of a [global batch, ...] tensor."""
        return slice(self.first, self.first + self.size)

    def global_indices(self, start: int, end: int) -> range:
        """The global indices of local rows [start, end)."""
        return range(self.first + start, self.first + end)


LossStats = dict[str, torch.Tensor]


class StepDraws:
    """The random inputs of one iteration on this rank, seeded by (seed, step, purpose, global index)."""

    def __init__(self, model: LatentAutoencoder, cfg: Config, phase: Phase, shard: Shard, step: int,
                 device: torch.device):
        self.cfg, self.phase, self.shard, self.step, self.device = cfg, phase, shard, step, device
        self.noise_shapes = model.G.noise_shapes(phase.lod)

    def latents(self, purpose: str, name: str) -> torch.Tensor:
        """This rank's rows of a [global batch, latent] standard normal draw."""
        return self.normal(purpose, name, self.cfg.model.latent_dim)

    def normal(self, purpose: str, name: str, width: int) -> torch.Tensor:
        """This rank's rows of a [global batch, width] standard normal draw."""
        return randomness.global_normal((self.phase.batch, width), self.shard.rows, self.cfg.train.seed, self.step,
                                        purpose, name).to(self.device)

    def prior(self, model: LatentAutoencoder, purpose: str, labels: torch.Tensor | None = None) -> torch.Tensor:
        """This rank's rows of a [global batch, latent] draw from the model's prior; `labels`
        (this rank's [B/W], values in [0, K], K unlabelled) condition it when given."""
        g = randomness.generator(self.cfg.train.seed, self.step, purpose, "prior")
        rows = self.shard.rows
        if labels is None:
            return model.prior.sample(self.phase.batch, g)[rows].to(self.device)
        everyone = torch.full((self.phase.batch,), model.prior.classes, dtype=torch.int64)
        everyone[rows] = labels.cpu()
        # The other ranks' labels are not known here; their rows are drawn unlabelled and dropped.
        return model.prior.sample(self.phase.batch, g, everyone)[rows].to(self.device)

    def eta(self, model: LatentAutoencoder, purpose: str, s: int, e: int) -> torch.Tensor | None:
        """A universal posterior's input noise for local rows [s, e): [e − s, 1, R, R] (None without one)."""
        if not model.noise_channels:
            return None
        r = self.phase.resolution
        return randomness.per_sample_noise([(model.noise_channels, r, r)], self.shard.global_indices(s, e),
                                           self.device, self.cfg.train.seed, self.step, purpose, "eta")[0]

    def mixing(self, purpose: str, prob: float, mode: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z1, z2, crossover layer per sample) for a step that mixes styles with probability `prob`,
        `mode` per_sample or per_batch (`randomness.crossover_layers`)."""
        lod = self.phase.lod
        cross = randomness.crossover_layers(self.phase.batch, self.shard.rows, 2 * (lod + 1), prob,
                                            self.cfg.train.seed, self.step, purpose, "mix",
                                            per_batch=mode == "per_batch").to(self.device)
        return self.latents(purpose, "z1"), self.latents(purpose, "z2"), cross

    def noise(self, purpose: str, s: int, e: int) -> list[torch.Tensor]:
        """G's noise maps for local rows [s, e); with `train.first_noise=per_batch` the first map is
        shared by the whole batch, as the original's 4x4 constant has batch 1."""
        t = self.cfg.train
        maps = randomness.per_sample_noise(self.noise_shapes, self.shard.global_indices(s, e), self.device,
                                           t.seed, self.step, purpose, "noise")
        if t.first_noise == "per_batch" and self.noise_shapes:
            shared = randomness.global_normal((1, *self.noise_shapes[0]), slice(None), t.seed, self.step, purpose,
                                              "noise0")
            maps[0] = shared.to(self.device).expand(e - s, -1, -1, -1)
        return maps


def step_inputs(model: LatentAutoencoder, batch: Batch, phase: Phase, cfg: Config, ctx: distributed.Context,
                step: int) -> tuple[Shard, torch.Tensor, StepDraws]:
    """What every step starts from: this rank's Shard of the global batch, its images on the
    device in the model's range [−1, 1], faded as G fades (`fade_reals`), and the step's draws."""
    shard = Shard.of(batch.images.shape[0], ctx.rank, cfg.train.batch_gpu)
    reals = model_images(model, batch.images, phase, ctx.device)
    return shard, reals, StepDraws(model, cfg, phase, shard, step, ctx.device)


def model_images(model: LatentAutoencoder, images: torch.Tensor, phase: Phase, device: torch.device) -> torch.Tensor:
    """uint8 images [N, C, R, R] → on `device` in the model's range [−1, 1] and dtype, faded as G fades."""
    reals = to_model_range(images.to(device, non_blocking=True)).to(model.w_avg.dtype)
    return fade_reals(reals, phase.alpha)


def accumulate_gradients(shard: Shard, micro_loss: Callable[[int, int], tuple[torch.Tensor, LossStats]],
                         stats: LossStats) -> None:
    """Backpropagate `micro_loss(start, end)` (a batch-mean loss and its 0-d statistics) of every
    micro-batch, each weighted by its share of the shard; add the weighted statistics into `stats`."""
    for s, e in shard.micro_batches:
        loss, new = micro_loss(s, e)
        (loss * (e - s) / shard.size).backward()
        weight = (e - s) / shard.size
        for k, v in new.items():
            stats[k] = stats.get(k, 0.0) + v * weight


def optimizer_step(optimizer: torch.optim.Optimizer, world_size: int) -> None:
    """Average the gradients of the optimizer's parameters over the ranks, clip their global L2
    norm to the optimizer's `gradient_clip` (train.gradient_clip; 0: no clipping), then step."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    distributed.average_gradients(params, world_size)
    clip = optimizer.param_groups[0].get("gradient_clip", 0.0)
    if clip:
        torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], clip, foreach=True)
    optimizer.step()


# Each network's parameters, listed once: Module.requires_grad_ walks the module tree on every
# call (0.37 ms for the demo's four networks on a 2-core CPU, three times per ALAE step; 0.04 ms
# over the lists). A network keeps its Parameter objects for life (`to` and `load_state_dict`
# change their data in place).
_PARAMETERS: weakref.WeakKeyDictionary[torch.nn.Module, tuple[torch.nn.Parameter, ...]] = weakref.WeakKeyDictionary()


def set_trainable(model: torch.nn.Module, **flags: bool) -> None:
    """set_trainable(model, F=False, G=False, E=True, D=True): which networks collect gradients
    (networks the model lacks, None, are skipped)."""
    for name, flag in flags.items():
        network = getattr(model, name)
        if network is None:
            continue
        if network not in _PARAMETERS:
            _PARAMETERS[network] = tuple(network.parameters())
        for p in _PARAMETERS[network]:
            p.requires_grad_(flag)


def fade_reals(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """During a fade-in, blend real images with their downsample-upsample as G blends its output."""
    if alpha >= 1.0:
        return x
    return alpha * x + (1.0 - alpha) * upsample2x(downsample2x(x))


def adam(parameters, cfg: Config, lr_mul: float = 1.0) -> torch.optim.Adam:
    """Adam with train.adam_beta1/beta2/eps; `lr_mul` (stored in the param group) scales the
    schedule's learning rate for this optimizer (the loop applies it at every step), and
    `gradient_clip` (train.gradient_clip) is read by `optimizer_step`."""
    t = cfg.train
    # foreach: one multi-tensor update per optimizer instead of a loop over parameters (torch
    # picks it by itself only on CUDA); the same arithmetic.
    kwargs = dict(lr=t.lr_per_lod[0], betas=(t.adam_beta1, t.adam_beta2), eps=t.adam_eps, foreach=True)
    group = {"params": list(parameters), "gradient_clip": t.gradient_clip}
    if lr_mul != 1.0:
        group["lr_mul"] = lr_mul
    return torch.optim.Adam([group], **kwargs)


def autoencoder_optimizers(model: LatentAutoencoder, cfg: Config) -> dict[str, torch.optim.Adam]:
    """{'autoencoder': Adam on E and G}, and with a discriminator {'adversary': Adam on D (and an
    AAE's Dy) at the objective's adversary_lr_mul × the learning rate}: the optimizers of VAE, WAE-MMD and WAE-GAN."""
    optimizers = {"autoencoder": adam([*model.E.parameters(), *model.G.parameters()], cfg)}
    if model.D is not None:
        adversaries = [model.D] + ([model.Dy] if model.Dy is not None else [])
        optimizers["adversary"] = adam([p for d in adversaries for p in d.parameters()], cfg,
                                       cfg.objective.adversary_lr_mul)
    return optimizers
