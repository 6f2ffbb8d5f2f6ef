"""bias_act against float64 formulas written out per activation."""
import math

import numpy as np
import pytest
import torch

from alae.kernels import bias_act


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch):
    monkeypatch.delenv("ALAE_KERNELS", raising=False)


SELU_SCALE, SELU_ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717

# act: (formula of s and alpha, default alpha, default gain)
FORMULAS = {
    "linear": (lambda s, a: s, 0.0, 1.0),
    "relu": (lambda s, a: np.maximum(s, 0), 0.0, math.sqrt(2)),
    "lrelu": (lambda s, a: np.where(s > 0, s, a * s), 0.2, math.sqrt(2)),
    "tanh": (lambda s, a: np.tanh(s), 0.0, 1.0),
    "sigmoid": (lambda s, a: 1 / (1 + np.exp(-s)), 0.0, 1.0),
    "elu": (lambda s, a: np.where(s > 0, s, np.expm1(s)), 0.0, 1.0),
    "selu": (lambda s, a: SELU_SCALE * np.where(s > 0, s, SELU_ALPHA * np.expm1(s)), 0.0, 1.0),
    "softplus": (lambda s, a: np.log1p(np.exp(s)), 0.0, 1.0),
    "swish": (lambda s, a: s / (1 + np.exp(-s)), 0.0, math.sqrt(2)),
}


def expected(x, b, dim, act, alpha=None, gain=None, clamp=None):
    func, def_alpha, def_gain = FORMULAS[act]
    s = x
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        s = x + b.reshape(shape)
    y = func(s, def_alpha if alpha is None else alpha) * (def_gain if gain is None else gain)
    if clamp is not None:
        y = np.clip(y, -clamp, clamp)
    return y


@pytest.mark.parametrize("act", list(FORMULAS))
def test_defaults_match_formula(act):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 4, 2)) * 3
    b = rng.standard_normal(5)
    got = bias_act(torch.from_numpy(x), torch.from_numpy(b), act=act, impl="ref")
    np.testing.assert_allclose(got.numpy(), expected(x, b, 1, act), rtol=1e-12, atol=1e-12)
    got = bias_act(torch.from_numpy(x), act=act)   # no bias
    np.testing.assert_allclose(got.numpy(), expected(x, None, 1, act), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", list(FORMULAS))
@pytest.mark.parametrize("dim", [0, 2, 3])
def test_custom_alpha_gain_clamp_dim(act, dim):
    rng = np.random.default_rng(dim)
    x = rng.standard_normal((3, 4, 5, 6)) * 2
    b = rng.standard_normal(x.shape[dim])
    kw = dict(alpha=0.1, gain=1.7, clamp=0.8)
    got = bias_act(torch.from_numpy(x), torch.from_numpy(b), dim=dim, act=act, **kw)
    np.testing.assert_allclose(got.numpy(), expected(x, b, dim, act, **kw), rtol=1e-12, atol=1e-12)
    assert got.abs().max() <= 0.8


def test_float32_and_2d_input():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 9)).astype(np.float32)
    b = rng.standard_normal(9).astype(np.float32)
    got = bias_act(torch.from_numpy(x), torch.from_numpy(b), act="lrelu")
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected(x.astype(np.float64), b, 1, "lrelu"), rtol=1e-5, atol=1e-6)
    # channels_last input gives the same numbers
    x4 = torch.randn(2, 3, 4, 5)
    b4 = torch.randn(3)
    torch.testing.assert_close(bias_act(x4.to(memory_format=torch.channels_last), b4, act="swish"),
                               bias_act(x4, b4, act="swish"))


@pytest.mark.parametrize("act", list(FORMULAS))
def test_gradcheck_and_gradgradcheck(act):
    torch.manual_seed(0)
    # Keep lrelu/relu/elu/clamp kinks away from the finite-difference step.
    x = torch.randn(2, 3, 3, dtype=torch.float64)
    x = (x + 0.1 * x.sign()).requires_grad_()
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    for kw in (dict(), dict(gain=0.7, clamp=1.3, alpha=0.3)):
        def fn(inp, bias):
            return bias_act(inp, bias, act=act, impl="ref", **kw)
        assert torch.autograd.gradcheck(fn, (x, b))
        assert torch.autograd.gradgradcheck(fn, (x, b))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(act="gelu"), ValueError, "unknown activation 'gelu'"),
    (dict(b=torch.zeros(5)), ValueError, "b has 5 elements"),
    (dict(b=torch.zeros(3, 1)), ValueError, "b must be a 1-D tensor"),
    (dict(b=torch.zeros(3), dim=4), ValueError, "dim=4 out of range"),
    (dict(clamp=-1), ValueError, "clamp must be None or >= 0"),
    (dict(impl="cuda"), RuntimeError, "impl='cuda'"),
    (dict(impl="gpu"), ValueError, "impl='gpu' is not one of"),
])
def test_bad_arguments(kwargs, exc, match):
    args = dict(x=torch.randn(2, 3, 4), b=torch.zeros(3))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        bias_act(**args)
