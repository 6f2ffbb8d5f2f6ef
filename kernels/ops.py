"""The public ops: each checks its arguments, picks its path (`extension.resolve_impl`: 'ref' or
'cuda', by `impl`, the device, the build and the self-test) and runs it.

The paths themselves live in upfirdn2d.py and bias_act.py, below the build and its self-test,
which run them; this module sits above all three.
"""
from . import bias_act as _bias_act
from . import upfirdn2d as _upfirdn2d
from .extension import resolve_impl
from .upfirdn2d import filter_size, parse_padding, parse_scaling


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Upsample, pad, filter and downsample `x` (the order of the steps: upfirdn2d.py's docstring).

    Args:
        x: float tensor [N, C, H, W] (any memory format).
        f: float filter, [taps] (separable) or [fh, fw], or None for identity; not trainable.
            Build one with `setup_filter`.
        up: int >= 1 or (upx, upy): zero-insertion upsampling factor.
        down: int >= 1 or (downx, downy): decimation factor.
        padding: int, (px, py) or (x0, x1, y0, y1) in pixels of the upsampled image;
            negative values crop.
        flip_filter: False for convolution, True for correlation.
        gain: overall multiplier of the output.
        impl: 'auto', 'ref' or 'cuda' (the env var ALAE_KERNELS overrides it).

    Returns:
        [N, C, (H*upy + y0 + y1 - fh) // downy + 1, (W*upx + x0 + x1 - fw) // downx + 1],
        dtype of x. Differentiable to any order with respect to x.
    """
    f, geom = _upfirdn2d.setup(x, f, up, down, padding, flip_filter, gain)
    return _upfirdn2d.run(resolve_impl(impl, x, op="upfirdn2d"), x, f, geom)


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Filter `x` with `f`, keeping its size when padding=0 (odd or even taps).

    `padding` (int, (x, y) or (x0, x1, y0, y1)) adds to the size-preserving padding.
    Returns [N, C, H + y0 + y1, W + x0 + x1].
    """
    padx0, padx1, pady0, pady1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [padx0 + fw // 2, padx1 + (fw - 1) // 2, pady0 + fh // 2, pady1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Upsample `x` by `up` with interpolation filter `f`, preserving the mean (gain*upx*upy).

    With padding=0 returns [N, C, H*upy, W*upx]; `padding` adds to that as in `filter2d`.
    """
    upx, upy = parse_scaling(up, "up")
    padx0, padx1, pady0, pady1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [padx0 + (fw + upx - 1) // 2, padx1 + (fw - upx) // 2,
         pady0 + (fh + upy - 1) // 2, pady1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Downsample `x` by `down` after filtering with `f` (anti-aliasing).

    With padding=0 and sizes divisible by `down` returns [N, C, H//downy, W//downx].
    """
    downx, downy = parse_scaling(down, "down")
    padx0, padx1, pady0, pady1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [padx0 + (fw - downx + 1) // 2, padx1 + (fw - downx) // 2,
         pady0 + (fh - downy + 1) // 2, pady1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None, impl="auto"):
    """Fused bias + activation + gain + clamp.

    Args:
        x: floating-point tensor of any shape and memory format.
        b: 1-D bias with ``x.shape[dim]`` elements, or None.
        dim: the dimension of x that `b` runs along (0 <= dim < x.ndim).
        act: one of linear, relu, lrelu, tanh, sigmoid, elu, selu, softplus, swish.
        alpha: lrelu negative slope; None for the default 0.2.
        gain: output scale; None for the activation's default (the table in bias_act.py).
        clamp: None, or clamp >= 0 to clip the output to [-clamp, clamp] after the gain.
        impl: 'auto', 'ref' or 'cuda' (the env var ALAE_KERNELS overrides it).

    Returns:
        A tensor with the shape and dtype of x, differentiable twice with respect to x and b.
    """
    _bias_act.check_args(x, b, dim, act, clamp)
    return _bias_act.run(resolve_impl(impl, x, op="bias_act"), x, b, dim, act, alpha, gain, clamp)
