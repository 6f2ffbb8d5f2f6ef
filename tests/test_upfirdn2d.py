"""upfirdn2d against an independent float64 brute force written from the definition.

The CUDA path is checked twice: on CPU, by compiling the kernel's per-pixel code
(kernels/upfirdn2d.h) for the host and running the CUDA path's Python side (separable split,
autograd, transposed geometry) on it; and on a GPU (tests marked `cuda`) against `ref`.
"""
import importlib

import numpy as np
import pytest
import torch

from alae.kernels import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

ufd = importlib.import_module("alae.kernels.upfirdn2d")


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch):
    monkeypatch.delenv("ALAE_KERNELS", raising=False)


def brute_upfirdn2d(x, f, up, down, padding, flip_filter, gain):
    """Loops over output pixels and taps: zero-insertion upsampling, zero padding / cropping,
    valid convolution (correlation if flip_filter), decimation. x: [N, C, H, W] float64 array."""
    upx, upy = up
    downx, downy = down
    px0, px1, py0, py1 = padding
    f2 = np.outer(f, f) if f.ndim == 1 else f
    fh, fw = f2.shape
    n, c, h, w = x.shape
    hu, wu = h * upy, w * upx                      # upsampled size
    hp, wp = hu + py0 + py1, wu + px0 + px1        # padded size
    oh, ow = (hp - fh) // downy + 1, (wp - fw) // downx + 1
    out = np.zeros((n, c, oh, ow))

    def upsampled(uy, ux):
        """Pixel of the zero-inserted image, or None where it is zero."""
        if not (0 <= uy < hu and 0 <= ux < wu) or uy % upy or ux % upx:
            return None
        return x[:, :, uy // upy, ux // upx]

    for oy in range(oh):
        for ox in range(ow):
            acc = np.zeros((n, c))
            for ky in range(fh):
                for kx in range(fw):
                    if flip_filter:   # correlation: tap k meets padded pixel o*down + k
                        py, pxx = oy * downy + ky, ox * downx + kx
                    else:             # convolution: tap k meets padded pixel o*down + (taps-1-k)
                        py, pxx = oy * downy + fh - 1 - ky, ox * downx + fw - 1 - kx
                    v = upsampled(py - py0, pxx - px0)
                    if v is not None:
                        acc += f2[ky, kx] * v
            out[:, :, oy, ox] = gain * acc
    return out


def _random_case(rng):
    up = (int(rng.choice([1, 2, 3, 4])), int(rng.choice([1, 2, 3, 4])))
    down = (int(rng.choice([1, 2, 3, 4])), int(rng.choice([1, 2, 3, 4])))
    if rng.random() < 0.5:
        f = rng.standard_normal(int(rng.integers(1, 9)))
    else:
        f = rng.standard_normal((int(rng.integers(1, 9)), int(rng.integers(1, 9))))
    fh, fw = (len(f), len(f)) if f.ndim == 1 else f.shape
    while True:
        h, w = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        pad = tuple(int(v) for v in rng.integers(-3, 5, size=4))
        oh = (h * up[1] + pad[2] + pad[3] - fh) // down[1] + 1
        ow = (w * up[0] + pad[0] + pad[1] - fw) // down[0] + 1
        if 1 <= oh <= 14 and 1 <= ow <= 14:
            break
    return dict(shape=(int(rng.integers(1, 3)), int(rng.integers(1, 4)), h, w), f=f, up=up, down=down,
                padding=pad, flip_filter=bool(rng.random() < 0.5), gain=float(rng.choice([1.0, 0.5, 3.0])))


@pytest.mark.parametrize("seed", range(60))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    case = _random_case(rng)
    x = rng.standard_normal(case["shape"])
    expected = brute_upfirdn2d(x, case["f"], case["up"], case["down"], case["padding"], case["flip_filter"], case["gain"])
    got = upfirdn2d(torch.from_numpy(x), torch.from_numpy(case["f"]), up=case["up"], down=case["down"],
                    padding=case["padding"], flip_filter=case["flip_filter"], gain=case["gain"], impl="ref")
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_float32_and_argument_forms():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 7))
    f = rng.standard_normal(4)
    expected = brute_upfirdn2d(x, f, (2, 2), (1, 1), (1, 1, 1, 1), False, 1.0)
    got = upfirdn2d(torch.from_numpy(x).float(), torch.from_numpy(f).float(), up=2, padding=1)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-4)
    # (x, y) padding means (x, x, y, y); channels_last input gives the same numbers.
    a = upfirdn2d(torch.from_numpy(x), torch.from_numpy(f), up=(2, 1), padding=(2, 1))
    b = upfirdn2d(torch.from_numpy(x).to(memory_format=torch.channels_last), torch.from_numpy(f),
                  up=(2, 1), padding=(2, 2, 1, 1))
    torch.testing.assert_close(a, b)


def test_setup_filter():
    # Fewer than 8 taps: 2-D outer product normalized to sum 1.
    f = setup_filter([1, 2, 1])
    assert f.dtype == torch.float32 and f.shape == (3, 3)
    torch.testing.assert_close(f, torch.tensor([[1., 2, 1], [2, 4, 2], [1, 2, 1]]) / 16)
    # 8 taps or more stay separable; gain applies as sqrt(gain) per axis.
    f = setup_filter(np.ones(8), gain=4)
    torch.testing.assert_close(f, torch.full((8,), 2 / 8))
    f = setup_filter([1, 2], separable=True, flip_filter=True, normalize=False)
    torch.testing.assert_close(f, torch.tensor([2., 1.]))
    torch.testing.assert_close(setup_filter([[1, 3]], gain=2), torch.tensor([[0.5, 1.5]]))
    torch.testing.assert_close(setup_filter(None), torch.ones(1, 1))


def test_resampling_helpers():
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1]).double()
    assert upsample2d(x, f).shape == (2, 3, 12, 10)
    assert downsample2d(x, f).shape == (2, 3, 3, 2)
    assert filter2d(x, setup_filter([1, 2, 1])).shape == x.shape
    # A constant image keeps its value away from the borders (normalized filters, mean-preserving up).
    ones = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(upsample2d(ones, f)[..., 4:-4, 4:-4], torch.ones(1, 1, 8, 8, dtype=torch.float64))
    torch.testing.assert_close(downsample2d(ones, f)[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2, dtype=torch.float64))
    # downsample2d with a box filter is 2x2 average pooling.
    torch.testing.assert_close(downsample2d(x[..., :4], setup_filter([1, 1]).double()),
                               torch.nn.functional.avg_pool2d(x[..., :4], 2))


@pytest.mark.parametrize("f_shape, up, down, padding, flip", [
    ((3, 3), 1, 1, 1, False),
    ((4,), 2, 1, (2, 1), False),
    ((2, 3), (1, 2), (2, 1), (0, 1, -1, 2), True),
    ((5,), 1, 2, (-1, 2, 1, 0), False),
])
def test_gradcheck_and_gradgradcheck(f_shape, up, down, padding, flip):
    torch.manual_seed(0)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    f = torch.randn(f_shape, dtype=torch.float64)

    def fn(inp):
        return upfirdn2d(inp, f, up=up, down=down, padding=padding, flip_filter=flip, gain=1.5, impl="ref")

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_second_derivative_through_nonlinearity():
    """R1-style use: grad of a loss that contains a gradient; must not be identically zero."""
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 2, 1]).double()
    y = upfirdn2d(x, f, down=2, padding=1) ** 3
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad((g ** 2).sum(), x)
    assert gg.abs().sum() > 0


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(f=torch.ones(2, 2, 2)), ValueError, "1 .separable. or 2 dimensions"),
    (dict(up=0), ValueError, "up factors must be >= 1"),
    (dict(down=(1, 0)), ValueError, "down factors must be >= 1"),
    (dict(up=1.5), ValueError, "up must be an int"),
    (dict(padding=(1, 2, 3)), ValueError, "padding must be"),
    (dict(padding=-4), ValueError, "output would be empty"),
    (dict(impl="fast"), ValueError, "impl='fast' is not one of"),
    (dict(impl="cuda"), RuntimeError, "impl='cuda'"),
])
def test_bad_arguments(kwargs, exc, match):
    args = dict(x=torch.randn(1, 2, 4, 4), f=setup_filter([1, 1]))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        upfirdn2d(**args)


def test_bad_input_rank_and_env(monkeypatch):
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        upfirdn2d(torch.randn(2, 4, 4), setup_filter([1, 1]))
    with pytest.raises(ValueError, match="must not require grad"):
        upfirdn2d(torch.randn(1, 1, 4, 4), torch.ones(2, requires_grad=True))
    monkeypatch.setenv("ALAE_KERNELS", "fast")
    with pytest.raises(ValueError, match="ALAE_KERNELS='fast'"):
        upfirdn2d(torch.randn(1, 1, 4, 4), None)
    monkeypatch.setenv("ALAE_KERNELS", "ref")   # the env var overrides impl='cuda'
    assert upfirdn2d(torch.randn(1, 1, 4, 4), None, impl="cuda").shape == (1, 1, 4, 4)


# --- the CUDA path's code on CPU -----------------------------------------------------------

def _cuda_path(x, f, up, down, padding, flip_filter, gain):
    """The autograd Function the 'cuda' impl runs, with whatever op `_cuda_op` returns."""
    upx, upy = up if isinstance(up, tuple) else (up, up)
    downx, downy = down if isinstance(down, tuple) else (down, down)
    pad = ufd.parse_padding(padding)
    return ufd._Upfirdn2dCuda.apply(x, f, ufd._Geometry(upx, upy, downx, downy, *pad, flip_filter, float(gain)))


@pytest.mark.parametrize("seed", range(40))
def test_host_compiled_kernel_matches_brute_force(host_upfirdn2d, monkeypatch, seed):
    monkeypatch.setattr(ufd, "_cuda_op", lambda: host_upfirdn2d)
    rng = np.random.default_rng(1000 + seed)
    case = _random_case(rng)
    x = torch.from_numpy(rng.standard_normal(case["shape"]))
    if seed % 2:
        x = x.to(memory_format=torch.channels_last)
    expected = brute_upfirdn2d(x.numpy(), case["f"], case["up"], case["down"], case["padding"],
                               case["flip_filter"], case["gain"])
    got = _cuda_path(x, torch.from_numpy(case["f"]), case["up"], case["down"], case["padding"],
                     case["flip_filter"], case["gain"])
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", range(12))
def test_host_compiled_kernel_derivatives(host_upfirdn2d, monkeypatch, seed):
    """First and second derivatives of the CUDA path's autograd graph equal the reference's."""
    monkeypatch.setattr(ufd, "_cuda_op", lambda: host_upfirdn2d)
    rng = np.random.default_rng(2000 + seed)
    case = _random_case(rng)
    f = torch.from_numpy(case["f"])
    args = (case["up"], case["down"], case["padding"], case["flip_filter"], case["gain"])
    x = torch.from_numpy(rng.standard_normal(case["shape"])).requires_grad_()

    def derivatives(fn):
        y = fn(x, f, *args)
        (g,) = torch.autograd.grad((y * y.detach().cos()).sum() + (y ** 3).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad((g * g).sum(), x)
        return y, g, gg

    ref = derivatives(lambda x_, f_, up, down, pad, flip, gain:
                      upfirdn2d(x_, f_, up=up, down=down, padding=pad, flip_filter=flip, gain=gain, impl="ref"))
    for got, want in zip(derivatives(_cuda_path), ref):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    if seed < 3:
        assert torch.autograd.gradgradcheck(lambda t: _cuda_path(t, f, *args), (x,))


# --- CUDA against ref (needs a GPU) -------------------------------------------------------

def _poison_cuda_cache(*shapes, dtype):
    """Fill freed cached blocks of these sizes with NaN, so an op's unwritten output shows."""
    blocks = [torch.full(s, float("nan"), dtype=dtype, device="cuda") for s in shapes]
    del blocks


TOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 4e-2}


def assert_close_scaled(got, want, tol):
    """Max abs error within tol times the largest reference magnitude; no NaN anywhere."""
    got, want = got.double(), want.double()
    assert not got.isnan().any(), "unwritten (NaN-poisoned) or invalid elements"
    assert got.shape == want.shape
    err = (got - want).abs().max().item()
    assert err <= tol * max(want.abs().max().item(), 1e-30), f"max error {err:.3g}"


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("seed", range(16))
def test_cuda_matches_ref(dtype, seed):
    """Forward, gradient and second derivative of a nonlinear loss, CUDA vs ref."""
    rng = np.random.default_rng(3000 + seed)
    case = _random_case(rng)
    n, c, h, w = case["shape"]
    if seed % 4 == 0:  # large batch and channels, larger images
        n, c, h, w = 16, 192, h + 29, w + 40
    x = torch.from_numpy(rng.standard_normal((n, c, h, w))).to("cuda", dtype)
    if seed % 3 == 0:
        x = x.to(memory_format=torch.channels_last)
    f = torch.from_numpy(case["f"] / np.abs(case["f"]).sum()).float().cuda()  # keeps fp16 in range
    kw = dict(up=case["up"], down=case["down"], padding=case["padding"], flip_filter=case["flip_filter"],
              gain=case["gain"])
    y_shape = upfirdn2d(x, f, impl="ref", **kw).shape
    weight = torch.from_numpy(rng.standard_normal(y_shape)).float().cuda()

    def derivatives(impl):
        xi = x.detach().clone().requires_grad_()
        _poison_cuda_cache(y_shape, xi.shape, xi.shape, xi.shape, dtype=dtype)
        y = upfirdn2d(xi, f, impl=impl, **kw)
        (g,) = torch.autograd.grad((y.float() ** 2 * weight).sum(), xi, create_graph=True)
        (gg,) = torch.autograd.grad((g.float() ** 2).sum(), xi)
        return y, g, gg

    for got, want in zip(derivatives("cuda"), derivatives("ref")):
        assert_close_scaled(got, want, TOL[dtype])


@pytest.mark.cuda
def test_cuda_gradgradcheck_and_auto():
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64, device="cuda", requires_grad=True)
    f = setup_filter([1, 3, 3, 1], device="cuda", separable=True).double()
    fn = lambda t: upfirdn2d(t, f, up=2, down=(1, 2), padding=(2, 1, -1, 3), impl="cuda")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    y = upfirdn2d(x, f, up=2, impl="auto")
    assert y.grad_fn is not None and "Upfirdn2dCuda" in type(y.grad_fn).__name__
