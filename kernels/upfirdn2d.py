"""upfirdn2d: upsample, pad, FIR-filter and downsample a batch of 2-D images.

Semantics are those of `upfirdn2d` in NVlabs stylegan2-ada-pytorch, so numbers match for the
same arguments. For each channel of an NCHW tensor, in this order:

1. upsample by inserting ``up - 1`` zeros after every pixel (size ``H*upy`` x ``W*upx``);
2. pad with zeros, ``padding = (x0, x1, y0, y1)`` pixels of the upsampled image; negative
   values crop;
3. convolve ("valid") with the FIR filter ``f`` times ``gain``. With ``flip_filter=False``
   this is a true convolution (the filter is flipped relative to cross-correlation); with
   ``flip_filter=True`` it is a cross-correlation;
4. keep every ``down``-th pixel, starting with the first.

Output size per axis: ``(in*up + pad0 + pad1 - taps) // down + 1``.

A 1-D filter of n taps is separable: it filters rows and columns with the same taps (the
2-D filter is its outer product). A 2-D filter ``[fh, fw]`` is used as is.

The CUDA path (``impl='cuda'``, upfirdn2d.cu) computes each output pixel from only the taps
that meet nonzero upsampled pixels, in float32 for 16-bit inputs, for any memory layout; a
separable filter runs as a row pass then a column pass. Its backward is upfirdn2d again (up and
down swapped, the filter flipped, the padding adjusted), so derivatives of any order work.
"""
import numpy as np
import torch
import torch.nn.functional as F


def parse_scaling(value, name):
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    if not (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, np.integer)) for v in value)):
        raise ValueError(f"{name} must be an int or an (x, y) pair of ints, got {value!r}")
    sx, sy = (int(v) for v in value)
    if sx < 1 or sy < 1:
        raise ValueError(f"{name} factors must be >= 1, got {value!r}")
    return sx, sy


def parse_padding(padding):
    if isinstance(padding, (int, np.integer)):
        padding = (int(padding), int(padding))
    if not (isinstance(padding, (list, tuple)) and len(padding) in (2, 4)
            and all(isinstance(v, (int, np.integer)) for v in padding)):
        raise ValueError(f"padding must be an int, (x, y) or (x0, x1, y0, y1) ints, got {padding!r}")
    if len(padding) == 2:
        px, py = padding
        padding = (px, px, py, py)
    return tuple(int(v) for v in padding)


def filter_size(f):
    """(width, height) in taps of a 1-D (separable) or 2-D filter; (1, 1) for None."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def _check_args(x, f):
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"upfirdn2d expects x of shape [N, C, H, W], got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if f is None:
        return torch.ones([1, 1], dtype=torch.float32, device=x.device)
    if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2):
        raise ValueError("upfirdn2d expects a filter tensor with 1 (separable) or 2 dimensions, got "
                         f"{f.ndim if isinstance(f, torch.Tensor) else type(f).__name__}")
    if f.numel() == 0 or not f.dtype.is_floating_point:
        raise ValueError(f"upfirdn2d filter must be a non-empty floating-point tensor, got {f.dtype} {tuple(f.shape)}")
    if f.requires_grad:
        raise ValueError("upfirdn2d filter must not require grad (it is a fixed FIR filter)")
    return f


def _output_size(in_size, up, down, pad0, pad1, taps):
    return (in_size * up + pad0 + pad1 - taps) // down + 1


def setup_filter(f, device=torch.device("cpu"), normalize=True, flip_filter=False, gain=1, separable=None):
    """Build a float32 FIR filter tensor for `upfirdn2d` from a scalar, list or array.

    A 1-D list of taps stays 1-D (separable) when `separable` is True, or when it is None and
    there are at least 8 taps; otherwise it becomes the 2-D outer product of itself. A 2-D
    input stays 2-D. `normalize` scales the filter so its taps sum to 1; `flip_filter` flips
    it along every axis; `gain` multiplies the effective 2-D filter (a separable filter is
    scaled by ``sqrt(gain)``, as it is applied once per axis). None means ``[1]``.
    Returns a tensor of shape [taps] or [fh, fw] on `device`.
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim not in (0, 1, 2) or f.numel() == 0:
        raise ValueError(f"setup_filter expects a scalar, 1-D or 2-D non-empty filter, got shape {tuple(f.shape)}")
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError("setup_filter: a 2-D filter cannot be made separable")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def via(path, x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """`alae.kernels.upfirdn2d` through `path` ('ref' or 'cuda'), whatever the device and ALAE_KERNELS say.

    The self-test's entry (selftest.py): on CPU tensors 'cuda' runs the CUDA path's Python side
    on whatever `_cuda_op` returns (in the tests, the host-compiled stand-in).
    """
    return run(path, x, *setup(x, f, up, down, padding, flip_filter, gain))


def setup(x, f, up, down, padding, flip_filter, gain):
    """The checked filter and the call's _Geometry; ValueError naming a bad argument."""
    f = _check_args(x, f)
    upx, upy = parse_scaling(up, "up")
    downx, downy = parse_scaling(down, "down")
    padx0, padx1, pady0, pady1 = parse_padding(padding)
    fw, fh = filter_size(f)
    out_h = _output_size(x.shape[2], upy, downy, pady0, pady1, fh)
    out_w = _output_size(x.shape[3], upx, downx, padx0, padx1, fw)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"upfirdn2d output would be empty ({out_h}x{out_w}) for input {tuple(x.shape)}, "
                         f"filter {tuple(f.shape)}, up={up}, down={down}, padding={padding}")
    return f, _Geometry(upx, upy, downx, downy, padx0, padx1, pady0, pady1, bool(flip_filter), float(gain))


def run(path, x, f, geom):
    if path == "cuda":
        return _Upfirdn2dCuda.apply(x, f, geom)
    return _upfirdn2d_ref(x, f, *geom)


def _upfirdn2d_ref(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain):
    """Pure PyTorch reference: zero insertion, pad/crop, depthwise conv2d, strided decimation."""
    n, c, h, w = x.shape
    # Zero-insertion upsampling: append up-1 zeros after every pixel along each axis.
    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)
    # Pad with zeros, then crop for negative padding.
    x = F.pad(x, [max(padx0, 0), max(padx1, 0), max(pady0, 0), max(pady1, 0)])
    x = x[:, :, max(-pady0, 0): x.shape[2] - max(-pady1, 0), max(-padx0, 0): x.shape[3] - max(-padx1, 0)]
    # conv2d correlates, so a true convolution flips the filter.
    f = f.to(device=x.device, dtype=x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    # Depthwise convolution; decimation is the convolution's stride.
    if f.ndim == 2:
        weight = (f * gain)[None, None].expand(c, 1, *f.shape)
        return F.conv2d(x, weight, stride=(downy, downx), groups=c)
    # Separable: rows (carrying the gain), then columns.
    x = F.conv2d(x, (f * gain)[None, None, None, :].expand(c, 1, 1, -1), stride=(1, downx), groups=c)
    return F.conv2d(x, f[None, None, :, None].expand(c, 1, -1, 1), stride=(downy, 1), groups=c)


class _Geometry(tuple):
    """(upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain) of one call."""

    def __new__(cls, *args):
        return super().__new__(cls, args)

    def transposed(self, f, in_shape, out_shape):
        """Geometry whose upfirdn2d maps an output gradient to the input gradient.

        The adjoint of zero-insertion is decimation and vice versa, the adjoint of a
        convolution is a correlation with the same filter, and the padding is what makes the
        result line up with (and have the size of) the original input.
        """
        upx, upy, downx, downy, padx0, _, pady0, _, flip_filter, gain = self
        fw, fh = filter_size(f)
        ih, iw = in_shape[2], in_shape[3]
        oh, ow = out_shape[2], out_shape[3]
        return _Geometry(downx, downy, upx, upy,
                         fw - padx0 - 1, iw * upx - ow * downx + padx0 - upx + 1,
                         fh - pady0 - 1, ih * upy - oh * downy + pady0 - upy + 1,
                         not flip_filter, gain)


def _cuda_op():
    """The compiled kernel, torch.ops.alae_kernels.upfirdn2d (see upfirdn2d.cpp)."""
    return torch.ops.alae_kernels.upfirdn2d


def _upfirdn2d_kernel(x, f, geom):
    """One call of the CUDA kernel (2-D filter) or two (separable: rows, then columns)."""
    upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain = geom
    op = _cuda_op()
    f = f.to(device=x.device, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32)
    if f.ndim == 2:
        return op(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain)
    x = op(x, f[None, :], upx, 1, downx, 1, padx0, padx1, 0, 0, flip_filter, gain)
    return op(x, f[:, None], 1, upy, 1, downy, 0, 0, pady0, pady1, flip_filter, 1.0)


class _Upfirdn2dCuda(torch.autograd.Function):
    """CUDA upfirdn2d; its backward is upfirdn2d again, so derivatives of any order work."""

    @staticmethod
    def forward(ctx, x, f, geom):
        ctx.save_for_backward(f)
        ctx.geom = geom
        ctx.in_shape = x.shape
        return _upfirdn2d_kernel(x, f, geom)

    @staticmethod
    def backward(ctx, dy):
        (f,) = ctx.saved_tensors
        dx = None
        if ctx.needs_input_grad[0]:
            dx = _Upfirdn2dCuda.apply(dy, f, ctx.geom.transposed(f, ctx.in_shape, dy.shape))
        return dx, None, None
