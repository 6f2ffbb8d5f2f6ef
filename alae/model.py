"""ALAE: the four networks F, G, E, D of one model, with the latent-space operations around them
(style broadcast and mixing, truncation toward the running mean of w, sampling, reconstruction).

Training code calls F, G, E and D directly as well (toggling requires_grad per step); the
methods here are the shared vocabulary. Shapes: z, w [N, latent_dim]; styles
[N, num_style_layers, latent_dim]; images [N, image_channels, R, R] with R = 4·2^lod in [-1, 1].
"""
from __future__ import annotations

import torch
from torch import nn

from alae.config import ModelConfig
from alae.networks.style import Discriminator, Encoder, Generator, MappingNetwork

COMPUTE_DTYPES = {"fp32": None, "bf16": torch.bfloat16}  # train.precision → ALAE.compute_dtype


class ALAE(nn.Module):
    """F (mapping), G (generator), E (encoder), D (discriminator) and the running mean `w_avg`;
    `compute_dtype` (None or torch.bfloat16, `COMPUTE_DTYPES[train.precision]`) is fixed when built."""

    def __init__(self, cfg: ModelConfig, compute_dtype: torch.dtype | None = None):
        super().__init__()
        self.num_lods = cfg.num_lods
        self.num_style_layers = cfg.num_style_layers
        self.F = MappingNetwork(cfg.latent_dim, cfg.mapping_layers, cfg.mapping_lr_mul)
        self.G = Generator(cfg.channels, cfg.latent_dim, cfg.image_channels, cfg.fused_scale_resolution,
                           cfg.to_rgb_gain)
        self.E = Encoder(cfg.channels, cfg.latent_dim, cfg.image_channels, cfg.encoder_std_eps)
        self.D = Discriminator(cfg.latent_dim, cfg.discriminator_layers, cfg.discriminator_outputs,
                               cfg.discriminator_activation, cfg.discriminator_lr_mul)
        self.register_buffer("w_avg", torch.zeros(cfg.latent_dim))
        # None: float32 everywhere. torch.bfloat16: generate and encode run G's and E's convolutions
        # and linears under bf16 autocast; their statistics, outputs, F, D and all state stay float32.
        self.compute_dtype = compute_dtype

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, latent] → w [N, latent]."""
        return self.F(z)

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w [N, latent] → styles [N, num_style_layers, latent] (a broadcast view: do not write into it)."""
        return w[:, None, :].expand(-1, self.num_style_layers, -1)

    def crossover_styles(self, w1: torch.Tensor, w2: torch.Tensor, crossover: torch.Tensor, lod: int) -> torch.Tensor:
        """Styles taking w2 on active layers [crossover[n], 2·(lod+1)) and w1 everywhere else.

        w1, w2 [N, latent]; crossover int [N] (2·(lod+1) or more: no mixing; drawn by
        `alae.randomness.crossover_layers` in training) → styles [N, L, latent].
        """
        layer = torch.arange(self.num_style_layers, device=w1.device)[None, :]
        use_w2 = (layer >= crossover.to(w1.device)[:, None]) & (layer < 2 * (lod + 1))
        return torch.where(use_w2[:, :, None], w2[:, None, :], w1[:, None, :])

    def truncate(self, styles: torch.Tensor, psi: float, cutoff: int) -> torch.Tensor:
        """Move the first `cutoff` style layers toward w_avg: w_avg + psi·(w − w_avg); others unchanged."""
        layer = torch.arange(styles.shape[1], device=styles.device)
        coefficient = torch.where(layer < cutoff, psi, 1.0).to(styles.dtype)[None, :, None]
        return torch.lerp(self.w_avg.to(styles.dtype), styles, coefficient)

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor, beta: float) -> None:
        """w_avg ← beta·w_avg + (1 − beta)·mean over the batch of w [N, latent] (original dlatent_avg)."""
        self.w_avg.lerp_(w.detach().mean(dim=0).to(self.w_avg.dtype), 1.0 - beta)

    def _autocast(self, like: torch.Tensor):
        return torch.autocast(like.device.type, dtype=self.compute_dtype or torch.bfloat16,
                              enabled=self.compute_dtype is not None)

    def generate(self, styles: torch.Tensor, lod: int, alpha: float, noise="random") -> torch.Tensor:
        """styles [N, L, latent] → images [N, C, R, R] in the dtype of styles; noise as `Generator.forward`."""
        with self._autocast(styles):
            return self.G(styles, lod, alpha, noise).to(styles.dtype)

    def encode(self, x: torch.Tensor, lod: int, alpha: float) -> torch.Tensor:
        """images [N, C, R, R] → w [N, latent] in the dtype of x."""
        with self._autocast(x):
            return self.E(x, lod, alpha).to(x.dtype)

    def discriminate(self, w: torch.Tensor) -> torch.Tensor:
        """w [N, latent] → logits [N]."""
        return self.D(w)

    def sample(self, z: torch.Tensor, lod: int, alpha: float, psi: float = 1.0, cutoff: int = 0,
               noise="random") -> torch.Tensor:
        """z [N, latent] → images [N, C, R, R], truncated with (psi, cutoff) when psi < 1."""
        styles = self.broadcast(self.map(z))
        if psi != 1.0 and cutoff > 0:
            styles = self.truncate(styles, psi, cutoff)
        return self.generate(styles, lod, alpha, noise)

    def reconstruct(self, x: torch.Tensor, lod: int, alpha: float, noise="random") -> torch.Tensor:
        """images [N, C, R, R] → G(E(x)) [N, C, R, R]."""
        return self.generate(self.broadcast(self.encode(x, lod, alpha)), lod, alpha, noise)
