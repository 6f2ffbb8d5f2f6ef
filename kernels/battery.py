"""The kernels' self-test battery: which cases each op runs, with which inputs and tolerances.

For every dtype the kernels support, NCHW and channels_last, and the geometries and activations
below, a case draws its inputs (rounded to the dtype) and calls the op through a given path
('ref' or 'cuda'); selftest.py runs the cases and compares the paths. BATTERY names this
battery: a hash of the Python side of the CUDA path, of this file and of the runner, so editing
any of them invalidates recorded results.
"""
import dataclasses
import functools
import hashlib
import os
from typing import Callable

import torch

from .bias_act import ACTIVATIONS
from .bias_act import via as bias_act_via
from .upfirdn2d import via as upfirdn2d_via

OPS = ("upfirdn2d", "bias_act")
LAYOUTS = {"NCHW": torch.contiguous_format, "channels_last": torch.channels_last}

# Largest error allowed, as a fraction of the largest magnitude of the reference's result (per
# output). The 16-bit paths round the output, the incoming gradient and each pass's result to
# the storage type (unit roundoff 4.9e-4 for float16, 3.9e-3 for bfloat16), a few roundings in
# a row; the bugs this is for (a wrong tap, offset or pass) are off by a large fraction.
TOLERANCE = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 5e-2, torch.float64: 1e-10}

UPFIRDN2D_SHAPE = (2, 3, 5, 6)
# up, down, padding (x0, x1, y0, y1), filter shape ([taps]: separable, [fh, fw]: 2-D), flip_filter, gain
UPFIRDN2D_GEOMETRIES = (
    (1, 1, (1, 1, 1, 1), (3, 3), False, 1.0),
    (2, 1, (2, 1, 2, 1), (4,), False, 4.0),
    (1, 2, (1, 1, 1, 1), (4,), True, 1.0),
    ((2, 1), (1, 2), (0, 1, -1, 2), (2, 3), True, 1.5),
    (2, 2, (-1, 2, 1, -2), (3,), False, 0.5),
    (1, 1, (-1, 0, 0, -2), (1, 1), False, 2.0),
)

BIAS_ACT_SHAPE = (2, 3, 4, 5)
# With a bias, a custom alpha, a negative gain and a clamp (0.75 is exact in every dtype); or none.
BIAS_ACT_VARIANTS = (dict(bias=True, alpha=0.3, gain=-1.25, clamp=0.75), dict(bias=False))
# Inputs are redrawn until every pre-activation is this far from 0 (where relu, lrelu, elu and selu
# bend) and every output this far (relative) from the clamp, where float32 and float64 may decide
# differently which side an element is on.
MARGIN = 0.05


@dataclasses.dataclass(frozen=True)
class Case:
    """One call of an op: `draw(generator)` gives its differentiable inputs (float64 values,
    already rounded to `dtype`), `call(path, **inputs)` runs it through 'ref' or 'cuda'; `sums`
    names the inputs whose derivatives are sums of another input's (a bias's: sums of x's)."""

    name: str
    dtype: torch.dtype
    layout: torch.memory_format
    seed: int
    draw: Callable[[torch.Generator], dict]
    call: Callable
    sums: dict = dataclasses.field(default_factory=dict)  # input name: (other input name, dims summed over)


def _rounded(t, dtype):
    return t.to(dtype).double()


def _dtype_name(dtype):
    return str(dtype).removeprefix("torch.")


def dtypes(device):
    """The dtypes the kernels support on `device`: bfloat16 only where the GPU has it."""
    bf16 = device.type != "cuda" or torch.cuda.is_bf16_supported()
    return tuple(d for d in TOLERANCE if d is not torch.bfloat16 or bf16)


def _upfirdn2d_call(path, x, f, up, down, padding, flip_filter, gain):
    return upfirdn2d_via(path, x, f.to(x.device), up=up, down=down, padding=padding, flip_filter=flip_filter,
                         gain=gain)


def _upfirdn2d_draw(g, dtype):
    return {"x": _rounded(torch.randn(UPFIRDN2D_SHAPE, generator=g, dtype=torch.float64), dtype)}


def _upfirdn2d_cases(dtype_list):
    cases = []
    for index, (up, down, padding, taps, flip, gain) in enumerate(UPFIRDN2D_GEOMETRIES):
        # Positive (no cancellation to float16 subnormals), unequal (a flipped filter shows), sum 1.
        f = 0.25 + torch.rand(taps, generator=torch.Generator().manual_seed(index))
        f = f / f.sum()
        kind = f"separable {taps[0]}-tap" if len(taps) == 1 else f"2-D {taps[0]}x{taps[1]}"
        call = functools.partial(_upfirdn2d_call, f=f, up=up, down=down, padding=padding, flip_filter=flip,
                                 gain=gain)
        for dtype in dtype_list:
            for layout_name, layout in LAYOUTS.items():
                name = (f"{_dtype_name(dtype)} {layout_name} up={up} down={down} padding={padding} "
                        f"{kind} filter flip_filter={flip} gain={gain}")
                draw = functools.partial(_upfirdn2d_draw, dtype=dtype)
                cases.append(Case(name, dtype, layout, len(cases), draw, call))
    return cases


def _bias_act_call(path, x, b=None, *, act, kw):
    return bias_act_via(path, x, b, act=act, **kw)


def _bias_act_draw(g, act, variant, dtype):
    """Inputs x (and b) kept MARGIN away from the kinks and the clamp (see MARGIN)."""
    def normal(shape, scale):
        return _rounded(scale * torch.randn(shape, generator=g, dtype=torch.float64), dtype)

    kw = {k: variant[k] for k in ("alpha", "gain") if k in variant}
    clamp = variant.get("clamp")
    x = normal(BIAS_ACT_SHAPE, 1.5)
    b = normal(BIAS_ACT_SHAPE[1], 0.5) if variant["bias"] else None
    for _ in range(20):
        s = x if b is None else x + b.reshape(1, -1, 1, 1)
        bad = s.abs() < MARGIN
        if clamp is not None:
            bad |= (bias_act_via("ref", s, act=act, **kw).abs() - clamp).abs() < MARGIN * clamp
        if not bad.any():
            break
        x = torch.where(bad, normal(BIAS_ACT_SHAPE, 1.5), x)
    return {"x": x} if b is None else {"x": x, "b": b}


def _bias_act_cases(dtype_list):
    cases = []
    for act in ACTIVATIONS:
        for d_index, dtype in enumerate(dtype_list):
            for l_index, (layout_name, layout) in enumerate(LAYOUTS.items()):
                # Each activation meets both variants in both layouts across the dtypes.
                variant = BIAS_ACT_VARIANTS[(d_index + l_index) % 2]
                kw = {k: variant[k] for k in ("alpha", "gain", "clamp") if k in variant}
                what = ("bias " + " ".join(f"{k}={v}" for k, v in kw.items()) if variant["bias"]
                        else "no bias, default alpha and gain, no clamp")
                cases.append(Case(f"{_dtype_name(dtype)} {layout_name} act={act} {what}", dtype, layout, len(cases),
                                  functools.partial(_bias_act_draw, act=act, variant=variant, dtype=dtype),
                                  functools.partial(_bias_act_call, act=act, kw=kw),
                                  {"b": ("x", (0, 2, 3))} if variant["bias"] else {}))
    return cases


CASES = {"upfirdn2d": _upfirdn2d_cases, "bias_act": _bias_act_cases}


def cases(op, dtype_list=tuple(TOLERANCE)):
    """The battery of `op` for these dtypes, in the order it runs."""
    return CASES[op](dtype_list)


def _battery_id():
    h = hashlib.sha256()
    for name in ("upfirdn2d.py", "bias_act.py", "battery.py", "selftest.py"):
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name), "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


BATTERY = _battery_id()
