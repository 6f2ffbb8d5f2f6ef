"""Benchmark of the fused ops on every shape the FFHQ-1024 StyleALAE uses.

    python -m alae.kernels.benchmark [--batch 32] [--dtypes fp32,bf16] [--json out.json] [--model]

Cases (batch 32, channels per resolution 4..1024: 512,512,512,512,256,128,64,32,16):
- bias_lrelu: bias + LeakyReLU(0.2) on every conv output of G and E ([N, C_r, r, r]) and in
  the mapping network ([N, 512]);
- blur: the [1,2,1]x[1,2,1] filter after G's upsampling conv and before E's downsampling conv;
- upsample2x / downsample2x: G's nearest 2x upsampling and E's 2x2 average pooling below 128 px
  (from 128 px up, both are fused into strided convolutions).

Each case runs with impl 'cuda', 'ref' and the plain torch expression ('torch': conv2d,
interpolate, avg_pool2d, leaky_relu), for the forward, the backward (dx, and db for the bias)
and the double backward (the gradient of dx with respect to dy, as in R1). Times are medians of
CUDA-event timings after warm-up, with inputs rotated through enough copies to exceed the L2
cache. GB/s counts the bytes an ideal fused kernel moves (inputs read once, outputs written once)
and is compared with a device-to-device copy measured in the same run. All implementations are
checked to agree before timing. `--model` also times a whole G and E forward+backward at 1024
with ALAE_KERNELS=ref and =cuda.
"""
import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from .ops import bias_act, downsample2d, filter2d, upsample2d
from .upfirdn2d import setup_filter

FFHQ_CHANNELS = (512, 512, 512, 512, 256, 128, 64, 32, 16)
FUSED_FROM = 128  # resolutions from which G and E resample inside strided convolutions
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
IMPLS = ("cuda", "ref", "torch")
PASSES = ("fwd", "bwd", "dbl")


def ffhq_cases(batch=32, channels=FFHQ_CHANNELS):
    """[(op, shape, users)] for every distinct op and input shape of the FFHQ model."""
    cases = [("bias_lrelu", (batch, 512), "F mapping")]
    for i, c in enumerate(channels):
        r = 4 * 2 ** i
        cases.append(("bias_lrelu", (batch, c, r, r), f"G, E convs at {r}"))
        if i == 0:
            continue
        cases.append(("blur", (batch, c, r, r), f"G, E at {r}"))
        if r < FUSED_FROM:
            cases.append(("upsample2x", (batch, channels[i - 1], r // 2, r // 2), f"G to {r}"))
            cases.append(("downsample2x", (batch, channels[i - 1], r, r), f"E from {r}"))
    return cases


def make_op(op, impl, channels, device, dtype):
    """fn(x, b) -> y for one op and implementation; b is the bias (bias_lrelu) or unused."""
    blur_f = setup_filter([1, 2, 1], device=device)
    box_f = setup_filter([1, 1], device=device)
    if impl == "torch":
        if op == "blur":
            w = blur_f.to(dtype)[None, None].expand(channels, 1, 3, 3)
            return lambda x, b: F.conv2d(x, w, padding=1, groups=channels)
        if op == "upsample2x":
            return lambda x, b: F.interpolate(x, scale_factor=2, mode="nearest")
        if op == "downsample2x":
            return lambda x, b: F.avg_pool2d(x, 2)
        return lambda x, b: F.leaky_relu(x + b.view([1, -1] + [1] * (x.ndim - 2)), 0.2)
    if op == "blur":
        return lambda x, b: filter2d(x, blur_f, impl=impl)
    if op == "upsample2x":
        return lambda x, b: upsample2d(x, box_f, impl=impl)
    if op == "downsample2x":
        return lambda x, b: downsample2d(x, box_f, impl=impl)
    return lambda x, b: bias_act(x, b, act="lrelu", alpha=0.2, gain=1, impl=impl)


@contextlib.contextmanager
def ieee_fp32_convolutions():
    """Full float32 in cuDNN convolutions while inside.

    cuDNN may run float32 convolutions in TF32 (10-bit mantissa, ~1e-3 relative error) by
    default, and the references the kernels are compared with are conv2d. Uses the per-operator
    precision API of torch >= 2.9 where present (mixing it with the legacy allow_tf32 flag is an
    error there), else the legacy flag.
    """
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        old, conv.fp32_precision = conv.fp32_precision, "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = old
    else:
        old, torch.backends.cudnn.allow_tf32 = torch.backends.cudnn.allow_tf32, False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32 = old


class _Timer:
    """Median milliseconds of fn() runs: CUDA events on a GPU, perf_counter elsewhere."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fns, warmup, reps):
        for i in range(warmup):
            fns[i % len(fns)]()
        times = []
        if self.cuda:
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
            for i, (start, end) in enumerate(events):
                start.record()
                fns[i % len(fns)]()
                end.record()
            torch.cuda.synchronize()
            times = [start.elapsed_time(end) for start, end in events]
        else:
            for i in range(reps):
                t0 = time.perf_counter()
                fns[i % len(fns)]()
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)


def _rotation(nbytes, device):
    """Copies of the inputs needed so that consecutive runs do not hit the L2 cache."""
    if device.type != "cuda":
        return 1
    l2 = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 50 << 20)
    return max(2, min(32, math.ceil(3 * l2 / max(nbytes, 1))))


def copy_bandwidth(device, timer, nbytes=1 << 30, reps=20):
    """GB/s of a device-to-device copy (read + write) of `nbytes`."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    ms = timer([lambda: dst.copy_(src)], warmup=3, reps=reps)
    return 2 * nbytes / ms / 1e6


def bench_case(op, shape, dtype, impls, device, timer, warmup, reps):
    """{(impl, pass): (ms, nominal bytes)} for one case; checks the impls agree first."""
    gen = torch.Generator(device=device).manual_seed(0)
    x0 = torch.randn(shape, generator=gen, device=device, dtype=torch.float32).to(dtype)
    b0 = torch.randn(shape[1], generator=gen, device=device, dtype=torch.float32).to(dtype)
    esize = x0.element_size()
    outputs, results = {}, {}
    for impl in impls:
        fn = make_op(op, impl, shape[1], device, dtype)
        outputs[impl] = fn(x0, b0)
        y_bytes = outputs[impl].numel() * esize
        x_bytes = x0.numel() * esize
        reads_y = y_bytes if op == "bias_lrelu" else 0  # the fused lrelu backward reads y for its sign
        copies = _rotation(x_bytes + y_bytes, device)
        sets = []
        for _ in range(copies):
            x = x0.clone().requires_grad_()
            b = b0.clone().requires_grad_(op == "bias_lrelu")
            y = fn(x, b)
            dy = torch.randn_like(y).requires_grad_()
            wrt = (x, b) if op == "bias_lrelu" else (x,)
            dx = torch.autograd.grad(y, wrt, dy, create_graph=True)[0]
            sets.append((x, b, y, dy, dx, wrt, torch.randn_like(dx)))
        runs = {
            "fwd": ([lambda s=s: fn(s[0], s[1]) for s in sets], x_bytes + y_bytes),
            "bwd": ([lambda s=s: torch.autograd.grad(s[2], s[5], s[3], retain_graph=True) for s in sets],
                    y_bytes + x_bytes + reads_y),
            "dbl": ([lambda s=s: torch.autograd.grad(s[4], s[3], s[6], retain_graph=True) for s in sets],
                    x_bytes + y_bytes + reads_y),
        }
        with torch.no_grad():
            results[(impl, "fwd")] = (timer(runs["fwd"][0], warmup, reps), runs["fwd"][1])
        for name in ("bwd", "dbl"):
            results[(impl, name)] = (timer(runs[name][0], warmup, reps), runs[name][1])
        del sets, runs
    first = outputs[impls[0]].float()
    for impl in impls[1:]:
        err = (outputs[impl].float() - first).abs().max().item()
        tol = 1e-4 if dtype == torch.float32 else 5e-2
        if not err <= tol * max(first.abs().max().item(), 1.0):
            raise AssertionError(f"{op} {shape} {dtype}: {impl} differs from {impls[0]} by {err}")
    return results


def run(device, batch=32, channels=FFHQ_CHANNELS, dtypes=("fp32", "bf16"), impls=IMPLS, warmup=10, reps=50,
        ops=None, out=sys.stdout):
    """Benchmark every case; prints a table and returns its rows as dicts."""
    device = torch.device(device)
    timer = _Timer(device)
    copy_gbs = copy_bandwidth(device, timer) if device.type == "cuda" else float("nan")
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else device}; "
          f"torch {torch.__version__}; copy bandwidth {copy_gbs:.0f} GB/s", file=out)
    head = f"{'op':<13}{'shape':<22}{'dtype':<6}{'pass':<5}" + "".join(f"{i + ' ms':>11}" for i in impls)
    head += f"{'GB/s':>8}{'%copy':>7}{'vs ref':>8}"
    print(head, file=out)
    rows = []
    for op, shape, users in ffhq_cases(batch, channels):
        if ops and op not in ops:
            continue
        for dname in dtypes:
            res = bench_case(op, shape, DTYPES[dname], impls, device, timer, warmup, reps)
            for p in PASSES:
                best = impls[0]
                ms = {i: res[(i, p)][0] for i in impls}
                gbs = res[(best, p)][1] / ms[best] / 1e6
                row = {"op": op, "shape": list(shape), "users": users, "dtype": dname, "pass": p, "ms": ms,
                       "impl": best, "gbs": gbs, "copy_gbs": copy_gbs, "frac_copy": gbs / copy_gbs,
                       "speedup_vs_ref": ms["ref"] / ms[best] if "ref" in ms else float("nan")}
                rows.append(row)
                print(f"{op:<13}{'x'.join(map(str, shape)):<22}{dname:<6}{p:<5}"
                      + "".join(f"{ms[i]:>11.3f}" for i in impls)
                      + f"{gbs:>8.0f}{100 * row['frac_copy']:>6.0f}%{row['speedup_vs_ref']:>7.2f}x", file=out)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


@contextlib.contextmanager
def _kernels_env(impl):
    old = os.environ.get("ALAE_KERNELS")
    os.environ["ALAE_KERNELS"] = impl
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("ALAE_KERNELS")
        else:
            os.environ["ALAE_KERNELS"] = old


def run_model(device, batch=8, channels=FFHQ_CHANNELS, impls=("ref", "cuda"), warmup=2, reps=10, out=sys.stdout):
    """Median ms of G forward + E forward + backward at the top resolution (1024 px for FFHQ),
    once per ALAE_KERNELS value in `impls`; {impl: ms}."""
    from alae.networks.style import Encoder, Generator  # the model, only for this optional section

    device = torch.device(device)
    timer = _Timer(device)
    lod = len(channels) - 1
    torch.manual_seed(0)
    g = Generator(list(channels), 512).to(device)
    e = Encoder(list(channels), 512).to(device)
    styles = torch.randn(batch, 2 * len(channels), 512, device=device)

    def step():
        w = e(g(styles, lod), lod)
        w.square().sum().backward()

    result = {}
    for impl in impls:
        with _kernels_env(impl):
            result[impl] = timer([step], warmup, reps)
    line = ", ".join(f"{impl} {ms:.1f} ms" for impl, ms in result.items())
    if "ref" in result and "cuda" in result:
        line += f" (cuda {result['ref'] / result['cuda']:.2f}x faster than ref)"
    print(f"G+E forward+backward at {4 * 2 ** lod} px, batch {batch}: {line}", file=out)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m alae.kernels.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma-separated: fp32, bf16, fp16")
    parser.add_argument("--ops", default="", help="comma-separated subset of bias_lrelu, blur, upsample2x, downsample2x")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--model", action="store_true", help="also time G+E forward+backward at 1024")
    parser.add_argument("--model-batch", type=int, default=8)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("alae.kernels.benchmark needs a CUDA device; none is available here.", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    with ieee_fp32_convolutions():  # the agreement check compares fp32 results to 1e-4; memory-bound ops lose no speed
        rows = run("cuda", batch=args.batch, dtypes=[d for d in args.dtypes.split(",") if d], warmup=args.warmup,
                   reps=args.reps, ops=[o for o in args.ops.split(",") if o])
    model = run_model("cuda", batch=args.model_batch) if args.model else None
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(device=torch.cuda.get_device_name(), date=time.strftime("%Y-%m-%d"),
                           torch=torch.__version__, rows=rows, model=model), fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
