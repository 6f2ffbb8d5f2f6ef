"""alae.training.objectives.divergences against an independent reference: the IMQ MMD by a
brute-force double loop (value and gradient)."""
import math

import pytest
import torch

from alae.training.objectives.divergences import WAE_SCALES, imq_mmd


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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
