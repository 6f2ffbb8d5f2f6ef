"""elbo and elbo_iw against a linear Gaussian model, whose log p(x) is a Gaussian log density
(z ~ N(0, I), x = A·z + c + s·noise: x ~ N(c, A·Aᵀ + s²·I)), and the metric of a tiny VAE
against the training objective's own ELBO statistic."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from alae.config import load_config
from alae.datasets import LMDBDataset, to_model_range
from alae.likelihoods import negative_log_likelihood
from alae.metrics import compute_metrics
from alae.metrics.elbo import IW_SAMPLES, image_elbo, image_iw_bound
from alae.randomness import generator
from alae.training.objectives.vae import vae_loss
from digit_database import networks, write_digit_database, write_family_model

S = 0.1  # the likelihood's std, in [0, 1] pixel units
SCALES = np.array([0.3, 0.15])  # A's column norms


class LinearGaussianVAE:
    """z [N, 2] → mean pixels A·z + c of a [1, 2, 3] image; q(z|x) the exact posterior, its mean
    moved by `shift` and its variance scaled by `stretch` (1, 0: exact)."""

    likelihood, likelihood_std, latent_dim = "gaussian", S, 2
    G = SimpleNamespace(noise_shapes=lambda lod: [])

    def __init__(self, shift=0.0, stretch=1.0):
        q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 2)))
        self.A = torch.from_numpy(q * SCALES)
        self.c = torch.full((6,), 0.5, dtype=torch.float64)
        self.shift, self.stretch = shift, stretch

    def exact_posterior(self, x01):
        variance = 1 / (1 + torch.from_numpy(SCALES**2) / S**2)  # (I + AᵀA/s²)⁻¹, diagonal
        return variance * ((x01 - self.c) @ self.A) / S**2, variance.expand(len(x01), -1)

    def posterior_parameters(self, x, lod, alpha):
        mean, variance = self.exact_posterior((x.flatten(1) + 1) / 2)
        return mean + self.shift, torch.log(variance * self.stretch)

    def broadcast(self, z):
        return z[:, None, :]

    def decode_raw(self, styles, lod, alpha, noise):
        return (2 * (styles[:, 0] @ self.A.T + self.c) - 1).view(-1, 1, 2, 3)  # linear output: pixels in [−1, 1]

    def negative_log_likelihood(self, raw, reals):
        return negative_log_likelihood(raw, reals, self.likelihood, self.likelihood_std)

    def log_marginal(self, x01):
        return multivariate_normal(self.c.numpy(), (self.A @ self.A.T).numpy() + S**2 * np.eye(6)).logpdf(x01)

    def closed_form_elbo(self, x01):
        """E_q[log p(x|z)] − KL(q ‖ N(0, I)) in closed form."""
        mean, logvar = self.posterior_parameters(2 * x01 - 1, 0, 1.0)
        variance = logvar.exp()
        residual = (x01 - mean @ self.A.T - self.c).square().sum(dim=1) + (variance * (self.A**2).sum(0)).sum(dim=1)
        expected_log_px = -3 * math.log(2 * math.pi * S**2) - residual / (2 * S**2)
        kl = 0.5 * (mean.square() + variance - logvar - 1).sum(dim=1)
        return (expected_log_px - kl).numpy()


def evaluation(model):
    return SimpleNamespace(model=model, lod=0, alpha=1.0, seed=11, device=torch.device("cpu"))


def images(model, count):
    """x01 [count, 6] drawn from the model itself, and the images [count, 1, 2, 3] in [−1, 1]."""
    g = torch.Generator().manual_seed(4)
    z = torch.randn(count, 2, generator=g, dtype=torch.float64)
    x01 = z @ model.A.T + model.c + S * torch.randn(count, 6, generator=g, dtype=torch.float64)
    return x01, (2 * x01 - 1).view(-1, 1, 2, 3)


def test_the_importance_weighted_bound_of_the_exact_posterior_is_log_p_x():
    model = LinearGaussianVAE()
    x01, x = images(model, 4)
    for k in (1, 7):
        bound = image_iw_bound(evaluation(model), x, range(4), range(4), k)
        np.testing.assert_allclose(bound.numpy(), model.log_marginal(x01.numpy()), rtol=1e-10)
    assert (model.closed_form_elbo(x01) == pytest.approx(model.log_marginal(x01.numpy()), rel=1e-10))


def test_the_one_draw_elbo_averages_to_the_closed_form_below_log_p_x():
    model = LinearGaussianVAE(shift=0.5, stretch=2.0)
    x01, x = images(model, 1)
    repeats = 4000  # one image under 4000 database indices: 4000 independent draws
    draws = image_elbo(evaluation(model), x.expand(repeats, -1, -1, -1), range(repeats), range(repeats)).numpy()
    expected = model.closed_form_elbo(x01)[0]
    assert abs(draws.mean() - expected) < 4 * draws.std() / math.sqrt(repeats)
    assert expected < model.log_marginal(x01.numpy()) - 0.5  # a looser bound for a wrong posterior


def test_the_bound_rises_toward_log_p_x_with_k():
    model = LinearGaussianVAE(shift=0.5, stretch=0.7)  # gaps of about 1.6, 0.2 and 0.04 nats
    count = 200  # L_k ≤ log p(x) in expectation: compare means over images
    x01, x = images(model, count)
    log_px = model.log_marginal(x01.numpy())
    bounds = {k: image_iw_bound(evaluation(model), x, range(count), range(count), k).numpy() for k in (1, 50, IW_SAMPLES)}
    gap = {k: (log_px - bound).mean() for k, bound in bounds.items()}
    assert IW_SAMPLES == 5000
    assert gap[1] > gap[50] > gap[IW_SAMPLES] > 0
    assert gap[1] > 1 and gap[IW_SAMPLES] < 0.1
    l1_error = bounds[1] - model.closed_form_elbo(x01)  # L_1 is a one-draw ELBO: mean 0
    assert abs(l1_error.mean()) < 4 * l1_error.std() / math.sqrt(count)


def test_elbo_of_a_vae_is_the_objectives_elbo_with_the_documented_draws(tmp_path):
    db = write_digit_database(tmp_path, train_per_class=2, test_per_class=2)
    path = write_family_model(tmp_path / "vae.pt", "vae")
    model = networks(path)
    (result,) = compute_metrics(["elbo"], model, db, holdout=20, seed=11, batch=8, progress=False)
    database = LMDBDataset(db, 28)
    reals = to_model_range(torch.stack([database[i] for i in range(20, 40)]))
    epsilon = torch.cat([torch.randn((1, 4), generator=generator(11, "elbo", i)) for i in range(20, 40)])
    cfg = load_config("mnist-vae", ["train.objective=vae", "model.mlp_width=32", "model.latent_dim=4"])
    _, stats = vae_loss(model, reals, epsilon, 0, 1.0, None, cfg)
    assert result.value == pytest.approx(stats["elbo"].item(), rel=1e-5)
    assert result.images == {"held_out": 20} and result.info["likelihood"] == "bernoulli"
