"""The small, stable API for scripts: load a trained model and encode, decode, map, sample.

    import alae
    model = alae.load_model("runs/demo")                 # run directory, checkpoint, .safetensors or original .pth
    w = model.encode(images)                             # [N, 3, R, R] in [-1, 1] → [N, latent]
    x = model.decode(w)                                  # [N, latent] (or W+ [N, layers, latent]) → images
    x = model.reconstruct(images)                        # decode(encode(images))
    x = model.generate(torch.randn(4, model.latent_dim), psi=0.7)   # z → F → truncation → G
    x = model.sample([0, 1, 2], psi=0.7)                 # as alae-generate --seeds 0-2
    cfg = alae.load_config("demo", ["alae.r1_gamma=5"])

Everything runs at the model's full resolution on the EMA networks, without gradients, in
float32. Models of every objective load: their codes are w (ALAE), the posterior mean (VAE) or
z (AAE, WAE), `map` is the identity without a mapping F, and z is drawn from the model's prior. Noise: 'const' (default: one fixed set of maps, so an image does not depend on its
batch), 'random' (maps seeded by the image's position in the call), 'none', or
'deterministic' (the original ALAE's noise=False). Everything else in alae is internal.
"""
from __future__ import annotations

from pathlib import Path

import torch

from alae.cli import resolve_device
from alae.config import Config, load_config
from alae.latents.noise import noise_inputs
from alae.latents.seeds import latents_for_seeds
from alae.model import LatentAutoencoder
from alae.model_files.loading import networks_from_weights, read_weights

__all__ = ["Model", "load_config", "load_model"]


class Model:
    """A trained model's EMA networks for inference. `config`: the full Config; `networks`: the
    LatentAutoencoder module (F, G, E, D, w_avg); `resolution`, `latent_dim`, `num_style_layers`."""

    def __init__(self, config: Config, networks: LatentAutoencoder, device: torch.device):
        self.config, self.networks, self.device = config, networks, device
        self.resolution = config.model.resolution
        self.latent_dim = config.model.latent_dim
        self.num_style_layers = networks.num_style_layers
        self._lod = networks.num_lods - 1

    def _noise(self, count: int, noise: str):
        return noise_inputs(self.networks, self._lod, noise, list(range(count)), self.device)

    @torch.no_grad()
    def map(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, latent] → w = F(z) [N, latent]."""
        return self.networks.map(z.to(self.device, torch.float32))

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images [N, C, R, R] in [−1, 1] at the model's resolution → codes [N, latent] (w = E(x) for ALAE)."""
        images = images.to(self.device, torch.float32)
        if images.ndim != 4 or images.shape[-2:] != (self.resolution, self.resolution):
            raise ValueError(f"images must be [N, C, {self.resolution}, {self.resolution}], got {tuple(images.shape)}")
        return self.networks.encode(images, self._lod, 1.0)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, noise: str = "const") -> torch.Tensor:
        """w [N, latent] (every style layer) or W+ [N, num_style_layers, latent] → images [N, C, R, R] in [−1, 1]."""
        latents = latents.to(self.device, torch.float32)
        styles = self.networks.broadcast(latents) if latents.ndim == 2 else latents
        return self.networks.generate(styles, self._lod, 1.0, self._noise(len(styles), noise))

    def reconstruct(self, images: torch.Tensor, noise: str = "const") -> torch.Tensor:
        """G(E(x)): images [N, C, R, R] in [−1, 1] → their reconstructions, same shape (G's output
        is not clamped: a linear output may leave [−1, 1]; the PNGs clamp it)."""
        return self.decode(self.encode(images), noise)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, psi: float = 1.0, cutoff: int | None = None,
                 noise: str = "const") -> torch.Tensor:
        """z [N, latent] → images: w = F(z), its first `cutoff` style layers (default
        train.truncation_cutoff) moved toward w_avg by psi (1: none), then G."""
        styles = self.networks.broadcast(self.map(z))
        if psi != 1.0:
            cutoff = self.config.train.truncation_cutoff if cutoff is None else cutoff
            styles = self.networks.truncate(styles, psi, cutoff)
        return self.decode(styles, noise)

    def sample(self, seeds: list[int], psi: float = 1.0, cutoff: int | None = None,
               noise: str = "const") -> torch.Tensor:
        """`generate` from the z of each seed, as alae-generate draws them (RandomState(seed).randn for N(0, I))."""
        return self.generate(latents_for_seeds(list(seeds), self.networks.prior), psi, cutoff, noise)


def load_model(path: str | Path, device: str | torch.device = "auto") -> Model:
    """The model in a run directory, alae checkpoint, `.safetensors` networks or original ALAE `.pth`
    (one loader for all), on `device` ('auto': CUDA when available)."""
    device = resolve_device(device) if isinstance(device, str) else device
    weights = read_weights(path)
    _, networks = networks_from_weights(weights, device, verbose=False)
    return Model(weights.config, networks, device)
