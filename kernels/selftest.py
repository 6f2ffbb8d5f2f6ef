"""The kernels' self-test: small cases of each op through the CUDA path against the float64 reference.

A kernel can be right on one GPU and wrong on another (a miscompiled index, a half-precision
conversion, a driver bug), and a wrong kernel trains silently wrong. So the first time a process
picks the CUDA kernels for a GPU model (`extension.resolve_impl`), each op runs a fixed battery on that
GPU: for every dtype the kernels support, NCHW and channels_last, and the geometries and
activations of battery.py, it computes the output y, the gradient of sum(w1·y²) (taken with
create_graph) and the gradient of sum(w2·that gradient) — the pattern of R1 — with respect to
every input, and compares each with ``impl='ref'`` evaluated in float64 on the same (rounded)
inputs and the same random projections w1, w2. An op fails at its first case where an error
exceeds TOLERANCE[dtype] times the largest magnitude of the reference's result; `run` returns
one result per op.

The cases are battery.py's. `extension.Extension` records the results beside the build, keyed by GPU
model and battery.BATTERY, so later processes read them instead of rerunning
(`python -m alae.kernels.build --selftest` reruns).
"""
import math
import time

import torch

from .battery import BATTERY, OPS, TOLERANCE, cases, dtypes

__all__ = ["BATTERY", "OPS", "check", "run", "summary"]  # BATTERY and OPS: what extension.Extension reads


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
