"""bias_act against float64 formulas written out per activation.

The CUDA path is checked twice: on CPU, by compiling the kernel's per-element code
(kernels/bias_act.h) for the host and running the CUDA path's autograd Functions on it; and
on a GPU (tests marked `cuda`) against `ref`.
"""
import importlib
import math

import numpy as np
import pytest
import torch

from alae.kernels import bias_act

ba = importlib.import_module("alae.kernels.bias_act")


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


# --- the CUDA path's code on CPU -----------------------------------------------------------

def _cuda_path(x, b, dim, act, alpha=None, gain=None, clamp=None):
    """The autograd Functions the 'cuda' impl runs, with whatever op `_cuda_op` returns."""
    spec = ba.ACTIVATIONS[act]
    cfg = ba._CudaConfig(dim, act, float(spec.def_alpha if alpha is None else alpha),
                         float(spec.def_gain if gain is None else gain), -1.0 if clamp is None else float(clamp))
    return ba._BiasActCuda.apply(x, b, cfg)


def _kinked_input(shape, seed):
    """Random values kept 0.1 away from 0, where relu/lrelu/elu/selu are not smooth."""
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return x + 0.1 * x.sign()


@pytest.mark.parametrize("act", list(FORMULAS))
@pytest.mark.parametrize("variant", ["defaults", "custom", "clamp_dim0", "dim2", "channels_last"])
def test_host_compiled_kernel_derivatives(host_bias_act, monkeypatch, act, variant):
    """Forward, first and second derivatives of the CUDA path's graph equal the reference's."""
    monkeypatch.setattr(ba, "_cuda_op", lambda: host_bias_act)
    kw, dim, shape = {}, 1, (2, 3, 4, 5)
    if variant == "custom":
        kw = dict(alpha=0.3, gain=-1.4)
    elif variant == "clamp_dim0":
        kw, dim = dict(gain=2.5, clamp=0.9), 0
    elif variant == "dim2":
        dim = 2
    x = _kinked_input(shape, seed=list(FORMULAS).index(act))
    if variant == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    x.requires_grad_()
    b = (0.3 * torch.randn(shape[dim], dtype=torch.float64)).requires_grad_()
    w = torch.randn(shape, dtype=torch.float64)

    def derivatives(fn):
        y = fn(x, b)
        gx, gb = torch.autograd.grad((y * y * w).sum(), (x, b), create_graph=True)
        ggx, ggb = torch.autograd.grad((gx * gx).sum() + gb.sum(), (x, b))
        return y, gx, gb, ggx, ggb

    got = derivatives(lambda x_, b_: _cuda_path(x_, b_, dim, act, **kw))
    want = derivatives(lambda x_, b_: bias_act(x_, b_, dim=dim, act=act, impl="ref", **kw))
    for g, w_ in zip(got, want):
        torch.testing.assert_close(g, w_, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("act", ["lrelu", "swish", "softplus", "linear"])
def test_host_compiled_kernel_gradgradcheck(host_bias_act, monkeypatch, act):
    monkeypatch.setattr(ba, "_cuda_op", lambda: host_bias_act)
    x = _kinked_input((2, 3, 2), seed=5).requires_grad_()
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    for kw in (dict(), dict(gain=0.7, clamp=1.1)):
        fn = lambda x_, b_: _cuda_path(x_, b_, 1, act, **kw)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x, b))
        assert torch.autograd.gradgradcheck(fn, (x, b))


def test_cuda_path_saves_y_not_x_for_lrelu(host_bias_act, monkeypatch):
    """relu/lrelu backward reads the output (kept anyway by the next layer), not the input."""
    monkeypatch.setattr(ba, "_cuda_op", lambda: host_bias_act)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    y = _cuda_path(x, None, 1, "lrelu")
    saved = [t for t in y.grad_fn.saved_tensors if t is not None]
    assert len(saved) == 1 and torch.equal(saved[0], y)


# --- CUDA against ref (needs a GPU) -------------------------------------------------------

TOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 4e-2}


def _poison_cuda_cache(*shapes, dtype):
    """Fill freed cached blocks of these sizes with NaN, so an op's unwritten output shows."""
    blocks = [torch.full(s, float("nan"), dtype=dtype, device="cuda") for s in shapes]
    del blocks


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("act", list(FORMULAS))
def test_cuda_matches_ref(dtype, act):
    """Forward, gradients and second derivatives for several shapes, layouts, dims and clamps."""
    cases = [((32, 512, 4, 4), 1, {}), ((7, 13, 17, 3), 1, dict(alpha=0.1, gain=0.5, clamp=0.7)),
             ((5, 33, 9, 11), 0, dict(clamp=1.5)), ((1000, 257), 1, {}), ((8, 64, 31, 29), 3, dict(gain=2.0))]
    for shape, dim, kw in cases:
        x = torch.randn(shape, device="cuda", dtype=torch.float64) * 2
        x = (x + 0.05 * x.sign()).to(dtype)
        if len(shape) == 4 and shape[1] % 2:
            x = x.to(memory_format=torch.channels_last)
        b = torch.randn(shape[dim], device="cuda", dtype=dtype)
        w = torch.randn(shape, device="cuda")

        def derivatives(impl):
            xi, bi = x.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
            _poison_cuda_cache(shape, shape, shape, shape, dtype=dtype)
            y = bias_act(xi, bi, dim=dim, act=act, impl=impl, **kw)
            gx, gb = torch.autograd.grad((y.float() ** 2 * w).sum(), (xi, bi), create_graph=True)
            ggx, ggb = torch.autograd.grad((gx.float() ** 2).sum() + gb.float().sum(), (xi, bi))
            return y, gx, gb, ggx, ggb

        # In 16-bit types the CUDA path clamps in float32 and the reference in the storage
        # type, so elements within rounding of the clamp may be cut by one and not the other:
        # compare their gradients away from it, and skip the bias gradients (sums over them).
        keep = torch.ones(shape, dtype=torch.bool, device="cuda")
        low_precision_clamp = "clamp" in kw and dtype in (torch.float16, torch.bfloat16)
        if low_precision_clamp:
            v = bias_act(x.double(), b.double(), dim=dim, act=act, impl="ref", **{**kw, "clamp": None})
            keep = (v.abs() - kw["clamp"]).abs() > 2e-2 * kw["clamp"]
        names = ("y", "gx", "gb", "ggx", "ggb")
        for name, got, want in zip(names, derivatives("cuda"), derivatives("ref")):
            got, want = got.double(), want.double()
            assert not got.isnan().any(), f"{name}: unwritten (NaN-poisoned) or invalid elements"
            if low_precision_clamp and name != "y":
                if name in ("gb", "ggb"):
                    continue
                got, want = got[keep], want[keep]
            scale = max(want.abs().max().item(), 1e-30)
            assert (got - want).abs().max().item() <= TOL[dtype] * scale, (name, shape, dim, kw)


@pytest.mark.cuda
def test_cuda_gradgradcheck_and_auto():
    x = _kinked_input((3, 4, 5), seed=1).cuda().requires_grad_()
    b = torch.zeros(4, dtype=torch.float64, device="cuda", requires_grad=True)
    for act in ("lrelu", "swish", "tanh"):
        fn = lambda x_, b_: bias_act(x_, b_, act=act, clamp=1.2, impl="cuda")  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x, b))
        assert torch.autograd.gradgradcheck(fn, (x, b))
    y = bias_act(x, b, act="lrelu", impl="auto")
    assert "BiasActCuda" in type(y.grad_fn).__name__
