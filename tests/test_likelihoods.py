"""alae.likelihoods against independent references: the KL by Monte Carlo and by
torch.distributions, the Bernoulli NLL by torch's binary_cross_entropy and a hand formula, the
Gaussian NLL by scipy, negative_log_likelihood's pixel ranges by hand."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import norm
from torch.distributions import Normal, kl_divergence

from alae.likelihoods import bernoulli_nll, gaussian_kl, gaussian_nll, negative_log_likelihood


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- gaussian_kl ------------------------------------------------------------------------------------

def code_posterior(n: int = 4, d: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.randn((n, d), generator=g(0), dtype=torch.float64)
    logvar = torch.randn((n, d), generator=g(1), dtype=torch.float64) * 0.8
    return mean, logvar


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    mean, logvar = code_posterior()
    samples = 200_000
    std = (0.5 * logvar).exp()
    z = mean + std * torch.randn((samples, *mean.shape), generator=g(2), dtype=torch.float64)
    log_q = (-0.5 * ((z - mean) / std) ** 2 - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_p = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    ratio = log_q - log_p  # [samples, n]
    estimate, error = ratio.mean(0), ratio.std(0) / math.sqrt(samples)
    kl = gaussian_kl(mean, logvar)
    assert kl.shape == (4,) and kl.dtype == torch.float64
    assert ((kl - estimate).abs() < 5 * error).all(), (kl, estimate, error)


def test_gaussian_kl_matches_torch_distributions():
    mean, logvar = code_posterior(6, 5)
    reference = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(torch.zeros_like(mean), torch.ones_like(mean)))
    assert torch.allclose(gaussian_kl(mean, logvar), reference.sum(1), rtol=1e-12, atol=1e-14)
    assert torch.equal(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))
    assert gaussian_kl(mean.float(), logvar.float()).dtype == torch.float32


def test_gaussian_kl_gradients():
    mean, logvar = (t.requires_grad_() for t in code_posterior(3, 2))
    assert torch.autograd.gradcheck(gaussian_kl, (mean, logvar))


# --- bernoulli_nll ----------------------------------------------------------------------------------

def images(dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Moderate logits and targets with grey levels, exact 0 and exact 1: [5, 1, 4, 4]."""
    logits = 8 * torch.rand((5, 1, 4, 4), generator=g(5), dtype=dtype) - 4
    targets = torch.rand((5, 1, 4, 4), generator=g(6), dtype=dtype)
    targets[0], targets[1] = 0.0, 1.0
    return logits, targets


def test_bernoulli_nll_matches_binary_cross_entropy_of_the_sigmoid():
    for dtype in (torch.float32, torch.float64):
        logits, targets = images(dtype)
        reference = F.binary_cross_entropy(torch.sigmoid(logits), targets, reduction="none").sum((1, 2, 3))
        nll = bernoulli_nll(logits, targets)
        assert nll.shape == (5,) and nll.dtype == dtype
        assert torch.allclose(nll, reference, rtol=1e-5 if dtype == torch.float32 else 1e-12)


def test_bernoulli_nll_matches_the_hand_formula_and_is_stable():
    logits, targets = images()
    p = 1 / (1 + torch.exp(-logits))
    hand = -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).sum((1, 2, 3))
    assert torch.allclose(bernoulli_nll(logits, targets), hand, rtol=1e-12)
    extreme = torch.tensor([[100.0, -100.0, 100.0, -100.0]])
    nll = bernoulli_nll(extreme, torch.tensor([[1.0, 0.0, 0.0, 1.0]]))
    assert torch.isfinite(nll).all() and math.isclose(float(nll), 200.0, rel_tol=1e-6)
    logits.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: bernoulli_nll(x, targets), (logits,))


# --- gaussian_nll -----------------------------------------------------------------------------------

@pytest.mark.parametrize("std", [1.0, 0.1, 2.5])
def test_gaussian_nll_matches_scipy(std):
    mean = torch.randn((3, 2, 5, 5), generator=g(7), dtype=torch.float64)
    targets = torch.randn((3, 2, 5, 5), generator=g(8), dtype=torch.float64)
    reference = -norm.logpdf(targets.numpy(), loc=mean.numpy(), scale=std).reshape(3, -1).sum(1)
    nll = gaussian_nll(mean, targets, std)
    assert nll.shape == (3,) and nll.dtype == torch.float64
    np.testing.assert_allclose(nll.numpy(), reference, rtol=1e-12)
    assert gaussian_nll(mean.float(), targets.float(), std).dtype == torch.float32


def test_gaussian_nll_refuses_a_non_positive_std():
    with pytest.raises(ValueError, match="std > 0"):
        gaussian_nll(torch.zeros(2, 3), torch.zeros(2, 3), 0.0)


def test_negative_log_likelihood_compares_pixels_in_0_1():
    raw = torch.tensor([[[[0.5, -1.0]]]], dtype=torch.float64)   # G's output in [−1, 1]
    reals = torch.tensor([[[[1.0, -1.0]]]], dtype=torch.float64)  # x01 = [1, 0]
    std = 0.2
    hand = ((1 - 0.75) ** 2 + 0.0) / (2 * std**2) + 2 * 0.5 * math.log(2 * math.pi * std**2)
    assert negative_log_likelihood(raw, reals, "gaussian", std).item() == pytest.approx(hand, rel=1e-12)
    logits = torch.tensor([[[[2.0, -3.0]]]], dtype=torch.float64)
    sigmoid = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    hand = -math.log(sigmoid(2.0)) - math.log(1 - sigmoid(-3.0))
    assert negative_log_likelihood(logits, reals, "bernoulli", std).item() == pytest.approx(hand, rel=1e-12)
    with pytest.raises(ValueError, match="likelihood"):
        negative_log_likelihood(logits, reals, "laplace", std)
