"""CPU stand-ins for the compiled CUDA ops, built from the kernels' own headers.

Each harness includes kernels/<op>.h, fills the kernel parameters as the torch binding
(kernels/<op>.cpp) does and runs the per-thread / per-element body the CUDA kernel runs, over
every position of the launch grid, in float64. Tests put these in place of
torch.ops.alae_kernels.<op> (monkeypatching `_cuda_op`), so the CUDA path's Python side
(autograd Functions, transposed geometry, separable split) and the kernels' index math run on CPU.
"""
import ctypes
import importlib
import shutil
import subprocess
import types
from pathlib import Path

import pytest
import torch

KERNEL_DIR = Path(__file__).resolve().parents[1] / "kernels"

UPFIRDN2D_HARNESS = r"""
#include "upfirdn2d.h"
// Fills the parameters as upfirdn2d.cpp does and runs the kernel's per-thread body everywhere.
extern "C" void upfirdn2d_host(const double* x, const int64_t* sx, double* y, const int64_t* sy,
                               const double* f, const int* d, double gain) {
  alae::Upfirdn2dParams p{};
  p.x = x; p.y = y; p.f = f; p.dtype = alae::kFloat64;
  p.n = d[0]; p.c = d[1]; p.in_h = d[2]; p.in_w = d[3]; p.out_h = d[4]; p.out_w = d[5];
  p.upx = d[6]; p.upy = d[7]; p.downx = d[8]; p.downy = d[9]; p.padx0 = d[10]; p.pady0 = d[11];
  p.fw = d[12]; p.fh = d[13]; p.flip = d[14] != 0; p.gain = gain;
  for (int i = 0; i < 4; ++i) { p.sx[i] = sx[i]; p.sy[i] = sy[i]; }
  p.channels_minor = p.c > 1 && sx[1] == 1;
  p.c_div = alae::make_fast_divider(p.c);
  // Every grid position the CUDA launch covers: (inner, plane) and each output row.
  for (int plane = 0; plane < alae::upfirdn2d_planes(p); ++plane)
    for (int inner = 0; inner < alae::upfirdn2d_row_len(p); ++inner)
      for (int oy = 0; oy < p.out_h; ++oy) {
        if (p.channels_minor) alae::upfirdn2d_thread<double, double, true>(p, inner, plane, oy);
        else alae::upfirdn2d_thread<double, double, false>(p, inner, plane, oy);
      }
}
"""

BIAS_ACT_HARNESS = r"""
#include "bias_act.h"
// Fills the parameters as bias_act.cpp does and runs the kernel's per-element body everywhere,
// with 32-bit indices (multiply-high bias index) into out32 and 64-bit ones into out64.
extern "C" void bias_act_host(const double* g, const double* b, const double* xref, const double* yref,
                              const double* dy, double* out32, double* out64, const int* modes,
                              const double* reals, const int64_t* sizes) {
  alae::BiasActParams p{};
  p.g = g; p.b = b; p.xref = xref; p.yref = yref; p.dy = dy;
  p.dtype = alae::kFloat64; p.mode = modes[0]; p.act = modes[1];
  p.alpha = reals[0]; p.gain = reals[1]; p.clamp = reals[2];
  p.numel = sizes[0];
  alae::set_bias_layout(p, sizes[1], sizes[2]);
  p.out = out32;
  for (int32_t i = 0; i < p.numel; ++i) alae::bias_act_store<double, double, int32_t>(p, i);
  p.out = out64;
  for (int64_t i = 0; i < p.numel; ++i) alae::bias_act_store<double, double, int64_t>(p, i);
}
"""


def compile_host_harness(tmp_dir: Path, source: str) -> ctypes.CDLL:
    """Compile a C++ harness that includes the kernels' headers with g++ and load it (skip without g++)."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not found")
    (tmp_dir / "harness.cpp").write_text(source)
    subprocess.run(["g++", "-std=c++17", "-O1", "-shared", "-fPIC", f"-I{KERNEL_DIR}", "harness.cpp",
                    "-o", "harness.so"], cwd=tmp_dir, check=True)
    return ctypes.CDLL(str(tmp_dir / "harness.so"))


def host_upfirdn2d_op(tmp_dir: Path):
    """A function with the signature of torch.ops.alae_kernels.upfirdn2d (float64, CPU)."""
    lib = compile_host_harness(tmp_dir, UPFIRDN2D_HARNESS)

    def op(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain):
        assert x.dtype == f.dtype == torch.float64 and f.ndim == 2
        n, c, h, w = x.shape
        fh, fw = f.shape
        oh = (h * upy + pady0 + pady1 - fh) // downy + 1
        ow = (w * upx + padx0 + padx1 - fw) // downx + 1
        fmt = torch.channels_last if c > 1 and x.stride(1) == 1 else torch.contiguous_format
        y = torch.full((n, c, oh, ow), float("nan"), dtype=x.dtype).contiguous(memory_format=fmt)
        f = f.contiguous()
        dims = (ctypes.c_int * 15)(n, c, h, w, oh, ow, upx, upy, downx, downy, padx0, pady0, fw, fh, int(flip))
        lib.upfirdn2d_host(ctypes.c_void_p(x.data_ptr()), (ctypes.c_int64 * 4)(*x.stride()),
                           ctypes.c_void_p(y.data_ptr()), (ctypes.c_int64 * 4)(*y.stride()),
                           ctypes.c_void_p(f.data_ptr()), dims, ctypes.c_double(gain))
        return y

    return op


def host_bias_act_op(tmp_dir: Path):
    """A function with the signature of torch.ops.alae_kernels.bias_act (float64, CPU)."""
    lib = compile_host_harness(tmp_dir, BIAS_ACT_HARNESS)

    def same_layout(t, like):
        return all(t.stride(i) == like.stride(i) for i in range(like.ndim) if like.shape[i] > 1)

    def op(g, b, xref, yref, dy, mode, dim, act, alpha, gain, clamp):
        assert g.dtype == torch.float64
        dense = g.is_contiguous() or (g.ndim == 4 and g.is_contiguous(memory_format=torch.channels_last))
        g = g if dense else g.contiguous()
        out32, out64 = torch.full_like(g, float("nan")), torch.full_like(g, float("nan"))
        keep = [t if t is None or same_layout(t, g) else torch.empty_like(g).copy_(t) for t in (xref, yref, dy)]
        ptr = lambda t: ctypes.c_void_p(None if t is None else t.data_ptr())  # noqa: E731
        b = None if b is None else b.contiguous()
        sizes = (g.numel(), g.stride(dim), g.shape[dim]) if b is not None else (g.numel(), 1, 1)
        lib.bias_act_host(ptr(g), ptr(b), *(ptr(t) for t in keep), ptr(out32), ptr(out64),
                          (ctypes.c_int * 2)(mode, act), (ctypes.c_double * 3)(alpha, gain, clamp),
                          (ctypes.c_int64 * 3)(*sizes))
        assert torch.equal(out32, out64), "32-bit and 64-bit indexing disagree"
        return out32

    return op



def any_dtype(op):
    """A float64 stand-in made to take the ops' other dtypes, as the CUDA kernels do: tensors are
    cast to float64 and the result is rounded to the first tensor's dtype (layout kept)."""
    def wrapped(*args):
        dtype = args[0].dtype
        return op(*(a.double() if isinstance(a, torch.Tensor) else a for a in args)).to(dtype)

    return wrapped


def install_stand_ins(monkeypatch, upfirdn2d_op, bias_act_op):
    """Put the stand-ins (for every dtype) in place of both CUDA ops. Returns `.ops`, whose
    entries a test may replace (e.g. by a deliberately wrong wrapper), and `.calls` per op."""
    calls = {"upfirdn2d": 0, "bias_act": 0}
    ops = {"upfirdn2d": any_dtype(upfirdn2d_op), "bias_act": any_dtype(bias_act_op)}

    def current(name):
        def call(*args):
            calls[name] += 1
            return ops[name](*args)
        return lambda: call

    for name in ops:
        monkeypatch.setattr(importlib.import_module(f"alae.kernels.{name}"), "_cuda_op", current(name))
    return types.SimpleNamespace(ops=ops, calls=calls)


class CpuBattery:
    """The kernels' real self-test battery, run on the CPU (where the stand-ins are) whatever
    device it is given, counting its runs: an Extension's `selftest` for a stand-in GPU."""

    def __init__(self):
        from alae.kernels import selftest

        self.OPS, self.BATTERY, self._run = selftest.OPS, selftest.BATTERY, selftest.run
        self.runs = 0

    def run(self, device):
        self.runs += 1
        return self._run(torch.device("cpu"))
