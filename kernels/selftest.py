"""The kernels' self-test: small cases of each op through the CUDA path against the float64 reference.

A kernel can be right on one GPU and wrong on another (a miscompiled index, a half-precision
conversion, a driver bug), and a wrong kernel trains silently wrong. So the first time a process
picks the CUDA kernels for a GPU model (`build.resolve_impl`), each op runs a fixed battery on that
GPU: for every dtype the kernels support, NCHW and channels_last, and the geometries and
activations below, it computes the output y, the gradient of sum(w1·y²) (taken with
create_graph) and the gradient of sum(w2·that gradient) — the pattern of R1 — with respect to
every input, and compares each with ``impl='ref'`` evaluated in float64 on the same (rounded)
inputs and the same random projections w1, w2. An op fails at its first case where an error
exceeds TOLERANCE[dtype] times the largest magnitude of the reference's result; `run` returns
one result per op.

`build.Extension` records the results beside the build, keyed by GPU model, so later processes
read them instead of rerunning (`python -m alae.kernels.build --selftest` reruns). BATTERY names
this battery: a hash of the Python side of the CUDA path and of this file, so editing either
invalidates recorded results.
"""
import dataclasses
import functools
import hashlib
import math
import os
import time
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
    for name in ("upfirdn2d.py", "bias_act.py", "selftest.py"):
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name), "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


BATTERY = _battery_id()


def _results(case, path, device, dtype):
    """{(what, input name): tensor}: the output (input name ''), the gradients and the second
    derivatives with respect to each input, of one run."""
    g = torch.Generator().manual_seed(case.seed)
    leaves = {}
    for name, value in case.draw(g).items():
        value = value.to(device=device, dtype=dtype)
        leaves[name] = (value.to(memory_format=case.layout) if value.ndim == 4 else value).requires_grad_()
    inputs = list(leaves.values())
    y = case.call(path, **leaves)

    def projection(shape):
        return torch.randn(shape, generator=g, dtype=torch.float64).to(device)

    grads = torch.autograd.grad((projection(y.shape) * y.double() ** 2).sum(), inputs, create_graph=True)
    projected = sum((projection(t.shape) * t.double()).sum() for t in grads)
    second = torch.autograd.grad(projected, inputs, allow_unused=True, materialize_grads=True)
    return {("output", ""): y, **{("gradient", n): t for n, t in zip(leaves, grads)},
            **{("second derivative", n): t for n, t in zip(leaves, second)}}


def _scale(case, want, what, name):
    """The magnitude errors are measured against: the reference's largest element or, for the
    derivatives with respect to an input in `case.sums`, the largest sum of the magnitudes of the
    terms they add up (rounding errors of a sum scale with those, not with the sum)."""
    if name in case.sums:
        other, dims = case.sums[name]
        return want[what, other].abs().sum(dims).max().item()
    return want[what, name].abs().max().item()


def _compare(label, got, want, scale, dtype):
    """(error as a fraction of the allowed error, None) or (inf, what is wrong)."""
    if got.shape != want.shape:
        return math.inf, f"{label}: shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    if got.dtype != dtype:
        return math.inf, f"{label}: dtype {got.dtype}, expected {dtype}"
    got = got.double()
    finite = torch.isfinite(got)
    if not finite.all():
        return math.inf, f"{label}: {int((~finite).sum())} of {got.numel()} elements are not finite"
    err, allowed = (got - want).abs().max().item(), TOLERANCE[dtype] * scale
    if err > allowed:
        return math.inf, f"{label}: max error {err:.3g} exceeds {TOLERANCE[dtype]:g} x {scale:.3g}"
    return (err / allowed if allowed else 0.0), None


def check(case, device):
    """(worst error as a fraction of the allowed error, None) if the CUDA path agrees with the
    reference on `case`, else (inf, what differs or what it raised)."""
    try:
        got = _results(case, "cuda", device, case.dtype)
        want = _results(case, "ref", device, torch.float64)
    except Exception as exc:  # e.g. a kernel launch failure: the op is unusable on this GPU
        message = str(exc).strip()
        return math.inf, f"raised {type(exc).__name__}: {message.splitlines()[0] if message else ''}"
    worst = 0.0
    for (what, name), tensor in got.items():
        label = what if not name else f"{what} wrt {name}"
        ratio, problem = _compare(label, tensor, want[what, name], _scale(case, want, what, name), case.dtype)
        if problem:
            return ratio, problem
        worst = max(worst, ratio)
    return worst, None


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(device):
    """The battery on `device`: {op: {"passed", "cases", "failure", "worst", "seconds"}}.

    `cases` counts the cases run (an op stops at its first failure), `failure` names that case and
    what differed (None when passed), `worst` is the largest error of the passed cases as a
    fraction of the allowed error. Runs with gradients enabled and autocast off whatever the
    caller's mode, and draws from its own generators (the global RNG is untouched).
    """
    device = torch.device(device)
    results = {}
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast(device.type, enabled=False):
        for op in OPS:
            _synchronize(device)
            start = time.perf_counter()
            worst, failure, count = 0.0, None, 0
            for case in cases(op, dtypes(device)):
                count += 1
                ratio, problem = check(case, device)
                if problem:
                    failure = f"case '{case.name}': {problem}"
                    break
                worst = max(worst, ratio)
            _synchronize(device)
            results[op] = {"passed": failure is None, "cases": count, "failure": failure,
                           "worst": round(worst, 4), "seconds": round(time.perf_counter() - start, 3)}
    return results


def summary(result):
    """One line of an op's result: 'passed N cases in T s (largest error P% of the tolerance)' or
    'FAILED case ...: what differed (K cases before it passed)'."""
    if result["passed"]:
        return (f"passed {result['cases']} cases in {result['seconds']:.2f} s "
                f"(largest error {100 * result['worst']:.0f}% of the tolerance)")
    return f"FAILED {result['failure']} ({result['cases'] - 1} cases before it passed)"
