"""The test ELBO and the importance-weighted bound of a VAE on the held-out images, in nats per image.

For a held-out image x (splits.py; at the resolution of `lod`), the VAE's posterior
q(z|x) = N(μ(x), diag σ²(x)), its prior p(z) = N(0, I) and its likelihood p(x|z) on [0, 1]
pixels (`vae.likelihood`: Bernoulli of G's logits, or N(G(z), s²·I) with s =
`vae.likelihood_std`; the terms of the VAE objective, `alae.likelihoods`):

- elbo: log p(x|z) − KL(q(z|x) ‖ p(z)) with one reparameterised draw z = μ + σ·ε and the KL in
  closed form (the VAE objective's `elbo` statistic, at β = 1); ε of database image i is drawn
  from a generator seeded by (seed, "elbo", i).
- elbo_iw / elbo_iw{N}: the importance-weighted bound of Burda et al. 2016,
  L_k = log (1/k) Σ_j p(x|z_j)·p(z_j) / q(z_j|x), z_j = μ + σ·ε_j, with k = `IW_SAMPLES` or N
  (here N counts samples, not thousands). L_1's expectation is the ELBO's; L_k ≤ log p(x) in
  expectation and rises toward it as k grows. The k draws ε_j of image i are one block [k, latent]
  from (seed, "elbo_iw", i).

Noise maps (style backbone) are the held-out reconstructions' (seed, "eval", position), shared by
an image's k draws. Likelihoods are summed in float64. The value is the mean over the held-out
images; `standard_error` (std/√n) is in the details.
"""
from __future__ import annotations

import math

import torch

import alae.randomness as randomness
from alae.likelihoods import gaussian_kl
from alae.datasets import to_model_range
from alae.metrics import splits
from alae.metrics.evaluation import Evaluation
from alae.metrics.results import Figures
from alae.metrics.sharding import gather_rows

IW_SAMPLES = 5000  # Burda et al. 2016 estimate test log-likelihoods with k = 5000
DECODE_BLOCK = 4096  # codes decoded per forward pass (memory: DECODE_BLOCK images)
LOG_2PI = math.log(2 * math.pi)


def vae_problem(ev: Evaluation) -> str | None:
    """Why `ev`'s model has no ELBO (no Gaussian posterior and likelihood: not a VAE), or why the split is missing, or None."""
    if ev.model.posterior != "gaussian" or ev.model.likelihood is None:
        return f"needs a VAE (a Gaussian posterior and a likelihood); this model is {ev.model.objective}"
    return splits.split_problem(ev)


def log_likelihood(model, raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | z) [N] in nats: G's raw output `raw` and images x in [−1, 1], both [N, C, R, R]."""
    return -model.negative_log_likelihood(raw.double(), x.double())


def _epsilon(ev: Evaluation, purpose: str, index: int, count: int) -> torch.Tensor:
    g = randomness.generator(ev.seed, purpose, index)
    return torch.randn((count, ev.model.latent_dim), generator=g).to(ev.device)


def _noise(ev: Evaluation, positions: range, repeats: int):
    maps = randomness.per_sample_noise(ev.model.G.noise_shapes(ev.lod), positions, ev.device, ev.seed, "eval")
    return [m.repeat_interleave(repeats, dim=0) for m in maps]


def _decoded_log_likelihood(ev: Evaluation, z: torch.Tensor, x: torch.Tensor, noise) -> torch.Tensor:
    raw = ev.model.decode_raw(ev.model.broadcast(z), ev.lod, ev.alpha, noise)
    return log_likelihood(ev.model, raw, x)


def image_elbo(ev: Evaluation, x: torch.Tensor, batch: range, positions: range) -> torch.Tensor:
    """The one-draw ELBO float64 [B] of images x [B, C, R, R] in [−1, 1], database indices `batch`."""
    mean, logvar = ev.model.posterior_parameters(x, ev.lod, ev.alpha)
    epsilon = torch.cat([_epsilon(ev, "elbo", i, 1) for i in batch])
    z = mean + torch.exp(0.5 * logvar) * epsilon
    return _decoded_log_likelihood(ev, z, x, _noise(ev, positions, 1)) - gaussian_kl(mean.double(), logvar.double())


def image_iw_bound(ev: Evaluation, x: torch.Tensor, batch: range, positions: range, k: int) -> torch.Tensor:
    """L_k float64 [B] of images x [B, C, R, R] in [−1, 1], database indices `batch` (module docstring)."""
    mean, logvar = ev.model.posterior_parameters(x, ev.lod, ev.alpha)
    epsilon = torch.stack([_epsilon(ev, "elbo_iw", i, k) for i in batch])  # [B, k, latent]
    log_weights = []
    per_block = max(1, DECODE_BLOCK // len(x))
    for first in range(0, k, per_block):
        e = epsilon[:, first:first + per_block]  # [B, c, latent]
        c = e.shape[1]
        z = mean[:, None] + torch.exp(0.5 * logvar)[:, None] * e
        log_px = _decoded_log_likelihood(ev, z.flatten(0, 1), x.repeat_interleave(c, dim=0),
                                         _noise(ev, positions, c)).view(len(x), c)
        e64, z64 = e.double(), z.double()
        log_pz = -0.5 * (z64.square() + LOG_2PI).sum(dim=2)
        log_qz = -0.5 * (e64.square() + logvar.double()[:, None] + LOG_2PI).sum(dim=2)
        log_weights.append(log_px + log_pz - log_qz)
    return torch.logsumexp(torch.cat(log_weights, dim=1), dim=1) - math.log(k)


def _held_out_mean(ev: Evaluation, per_image, name: str, details: dict) -> Figures:
    _, test = splits.split(ev)
    parts = []
    bar = ev.progress(len(ev.my_shard(test)), name)
    for batch, images in ev.image_batches(test, ev.resolution):
        positions = range(batch.start - test.start, batch.stop - test.start)
        parts.append(per_image(ev, to_model_range(images), batch, positions))
        bar.update(len(images))
    bar.close()
    values = gather_rows(torch.cat(parts), len(test), ev.ctx)
    images = {"held_out": len(test)}
    if values is None:
        return Figures(None, images, details)
    standard_error = values.std(correction=0).item() / math.sqrt(len(values))
    return Figures(values.mean().item(), images, {**details, "holdout": ev.holdout, "standard_error": standard_error,
                                                  "likelihood": ev.model.likelihood})


def elbo(ev: Evaluation, name: str, count: None) -> Figures:
    return _held_out_mean(ev, image_elbo, name, {})


def elbo_iw(ev: Evaluation, name: str, count: int) -> Figures:
    return _held_out_mean(ev, lambda *a: image_iw_bound(*a, count), name, {"importance_samples": count})
