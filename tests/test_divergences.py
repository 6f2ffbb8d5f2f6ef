"""alae.training.objectives.divergences against independent references: the KL by Monte Carlo and
by torch.distributions, the IMQ MMD by a brute-force double loop (value and gradient), the
Bernoulli NLL by torch's binary_cross_entropy and a hand formula, the Gaussian NLL by scipy."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import norm
from torch.distributions import Normal, kl_divergence

from alae.training.objectives.divergences import (
    WAE_SCALES,
    bernoulli_nll,
    gaussian_kl,
    gaussian_nll,
    imq_mmd,
)


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


# --- imq_mmd ----------------------------------------------------------------------------------------

def mmd_by_loops(z_q: torch.Tensor, z_p: torch.Tensor, sigma2: float, scales) -> torch.Tensor:
    """The WAE authors' IMQ statistic written out pair by pair: C = 2·d·σ²·s, k = C/(C + ‖x − y‖²)."""
    n, m, d = len(z_q), len(z_p), z_q.shape[1]
    total = torch.zeros((), dtype=z_q.dtype)
    for s in scales:
        c = 2 * d * sigma2 * s
        qq = sum(c / (c + ((z_q[i] - z_q[j]) ** 2).sum()) for i in range(n) for j in range(n) if i != j)
        pp = sum(c / (c + ((z_p[i] - z_p[j]) ** 2).sum()) for i in range(m) for j in range(m) if i != j)
        qp = sum(c / (c + ((z_q[i] - z_p[j]) ** 2).sum()) for i in range(n) for j in range(m))
        total = total + qq / (n * (n - 1)) + pp / (m * (m - 1)) - 2 * qp / (n * m)
    return total


def codes_and_prior(n: int, m: int, d: int = 4, sigma2: float = 1.7) -> tuple[torch.Tensor, torch.Tensor]:
    z_q = 0.8 * torch.randn((n, d), generator=g(3), dtype=torch.float64) + 0.3
    z_p = math.sqrt(sigma2) * torch.randn((m, d), generator=g(4), dtype=torch.float64)
    return z_q, z_p


@pytest.mark.parametrize("n,m", [(10, 10), (7, 12), (12, 2)])
def test_imq_mmd_equals_the_brute_force_double_loop(n, m):
    sigma2, d = 1.7, 4
    z_q, z_p = codes_and_prior(n, m, d, sigma2)
    value = imq_mmd(z_q, z_p, base_c=2 * d * sigma2)
    assert value.shape == () and value.dtype == torch.float64
    assert torch.allclose(value, mmd_by_loops(z_q, z_p, sigma2, WAE_SCALES), rtol=1e-12, atol=1e-14)
    assert WAE_SCALES == (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
    some = (0.3, 4.0)
    assert torch.allclose(imq_mmd(z_q, z_p, 2 * d * sigma2, some), mmd_by_loops(z_q, z_p, sigma2, some), rtol=1e-12)


def test_imq_mmd_gradient_equals_the_brute_force_gradient():
    sigma2, d = 1.0, 3
    z_q, z_p = codes_and_prior(8, 11, d, sigma2)
    q1, q2 = z_q.clone().requires_grad_(), z_q.clone().requires_grad_()
    (grad,) = torch.autograd.grad(imq_mmd(q1, z_p, 2 * d * sigma2), q1)
    (reference,) = torch.autograd.grad(mmd_by_loops(q2, z_p, sigma2, WAE_SCALES), q2)
    assert grad.abs().max() > 1e-3
    assert torch.allclose(grad, reference, rtol=1e-10, atol=1e-13)


def test_imq_mmd_by_hand_on_two_points():
    # z_q = {0, 1}, z_p = {0, 2} in 1-D, C = 1: within q 1/(1 + 1²), within p 1/(1 + 2²),
    # cross (1 + 1/(1 + 4) + 1/(1 + 1) + 1/(1 + 1))·2/4 = 1.1; total 0.5 + 0.2 − 1.1.
    z_q, z_p = torch.tensor([[0.0], [1.0]], dtype=torch.float64), torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    value = imq_mmd(z_q, z_p, base_c=1.0, scales=(1.0,))
    assert math.isclose(float(value), -0.4, rel_tol=1e-14)


def test_imq_mmd_in_float32_and_its_size_checks():
    z_q, z_p = codes_and_prior(16, 16)
    value32 = imq_mmd(z_q.float(), z_p.float(), 2 * 4 * 1.7)
    assert value32.dtype == torch.float32
    assert torch.allclose(value32.double(), imq_mmd(z_q, z_p, 2 * 4 * 1.7), rtol=1e-4, atol=1e-6)
    for n, m in [(1, 5), (5, 1)]:
        with pytest.raises(ValueError, match="at least 2"):
            imq_mmd(torch.zeros(n, 3), torch.zeros(m, 3), 6.0)


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
