// upfirdn2d: launch parameters and the value of one output pixel.
//
// Semantics (per channel plane): insert up-1 zeros after every input pixel, pad with zeros
// (pad0 before; negative crops), convolve "valid" with the [fh, fw] filter (flip=false: true
// convolution, flip=true: correlation), keep every down-th pixel, multiply by gain.
#pragma once
#include "common.h"
#include "fast_divider.h"

namespace alae {

struct Upfirdn2dParams {
  const void* x;   // input [n, c, in_h, in_w], element strides sx (any layout)
  void* y;         // output [n, c, out_h, out_w], element strides sy
  const void* f;   // filter [fh, fw], contiguous; float (double for float64 inputs)
  int dtype;       // DType of x and y
  int n, c, in_h, in_w, out_h, out_w;
  int upx, upy, downx, downy, padx0, pady0;
  int fw, fh;
  bool flip;
  double gain;
  int64_t sx[4], sy[4];  // strides in elements, N, C, H, W order
  bool channels_minor;   // map consecutive threads to consecutive channels (channels_last)
  FastDivider c_div;     // divides by c (host: make_fast_divider(c))
};

// Returns nullptr on success, else a CUDA error string. `stream` is a cudaStream_t.
const char* upfirdn2d_launch(const Upfirdn2dParams& p, void* stream);

// Floor division and modulo by m >= 1: a shift and a mask when m is a power of two (the
// up/down factors in practice), else a hardware divide. a may be negative.
ALAE_HD int floor_div(int a, int m) {
  if ((m & (m - 1)) == 0) {
#if defined(__CUDA_ARCH__)
    return a >> (__ffs(m) - 1);
#else
    return a >> __builtin_ctz(static_cast<unsigned>(m));
#endif
  }
  const int q = a / m;
  return (a % m != 0 && a < 0) ? q - 1 : q;
}
ALAE_HD int floor_mod(int a, int m) { return a - floor_div(a, m) * m; }

// The taps of one output pixel along one axis that meet input pixels: tap j = j0 + k*up
// (correlation order) meets input pixel i0 + k, for k in [k_begin, k_end).
// Tap j of output o meets padded pixel o*down + j, i.e. upsampled pixel u = o*down + j - pad0,
// which is nonzero only for u = i*up with 0 <= i < in_size: j0 = (-u0) mod up, then every up-th.
struct TapRange {
  int j0, i0, k_begin, k_end;
};

ALAE_HD TapRange tap_range(int o, int up, int down, int pad0, int taps, int in_size) {
  const int u0 = o * down - pad0;
  TapRange r;
  r.j0 = floor_mod(-u0, up);
  r.i0 = floor_div(u0 + r.j0, up);  // exact
  const int k_taps = floor_div(taps - r.j0 + up - 1, up);
  r.k_begin = r.i0 < 0 ? -r.i0 : 0;
  r.k_end = in_size - r.i0 < k_taps ? in_size - r.i0 : k_taps;
  return r;
}

// Output pixel (oy, ox) of the plane starting at `x` (strides sh, sw), before the output cast.
// Index math is per pixel; each tap costs one load and one multiply-add.
template <typename Acc, typename T>
ALAE_HD Acc upfirdn2d_pixel(const Upfirdn2dParams& p, const T* x, int64_t sh, int64_t sw,
                            const Acc* f, int oy, int ox) {
  const TapRange ry = tap_range(oy, p.upy, p.downy, p.pady0, p.fh, p.in_h);
  const TapRange rx = tap_range(ox, p.upx, p.downx, p.padx0, p.fw, p.in_w);
  Acc acc = 0;
  for (int ky = ry.k_begin; ky < ry.k_end; ++ky) {
    const int jy = ry.j0 + ky * p.upy;
    const Acc* frow = f + (p.flip ? jy : p.fh - 1 - jy) * p.fw;
    const T* xrow = x + (ry.i0 + ky) * sh;
    for (int kx = rx.k_begin; kx < rx.k_end; ++kx) {
      const int jx = rx.j0 + kx * p.upx;
      acc += frow[p.flip ? jx : p.fw - 1 - jx] * Cast<Acc, T>::to_acc(xrow[(rx.i0 + kx) * sw]);
    }
  }
  return acc * static_cast<Acc>(p.gain);
}

// Computes and stores output pixel (n, c, oy, ox).
template <typename T, typename Acc>
ALAE_HD void upfirdn2d_store(const Upfirdn2dParams& p, int n, int c, int oy, int ox) {
  const T* x = static_cast<const T*>(p.x) + n * p.sx[0] + c * p.sx[1];
  const Acc v = upfirdn2d_pixel<Acc>(p, x, p.sx[2], p.sx[3], static_cast<const Acc*>(p.f), oy, ox);
  T* y = static_cast<T*>(p.y);
  y[n * p.sy[0] + c * p.sy[1] + oy * p.sy[2] + ox * p.sy[3]] = Cast<Acc, T>::from_acc(v);
}

// The CUDA grid's layout (upfirdn2d.cu): position `inner` along an output row (ox, or ox*C + c
// when channels are minor, so that neighbouring threads touch neighbouring addresses) and
// `plane` (n*C + c, or n when channels are minor); every output row oy of that plane.
ALAE_HD int upfirdn2d_row_len(const Upfirdn2dParams& p) { return p.channels_minor ? p.out_w * p.c : p.out_w; }
ALAE_HD int upfirdn2d_planes(const Upfirdn2dParams& p) { return p.channels_minor ? p.n : p.n * p.c; }

// The body of one CUDA thread for grid position (inner, plane) and output row oy.
template <typename T, typename Acc, bool kChannelsMinor>
ALAE_HD void upfirdn2d_thread(const Upfirdn2dParams& p, int inner, int plane, int oy) {
  if (kChannelsMinor) {
    const int ox = static_cast<int>(fast_div(p.c_div, static_cast<uint32_t>(inner)));
    upfirdn2d_store<T, Acc>(p, plane, inner - ox * p.c, oy, ox);
  } else {
    const int n = static_cast<int>(fast_div(p.c_div, static_cast<uint32_t>(plane)));
    upfirdn2d_store<T, Acc>(p, n, plane - n * p.c, oy, inner);
  }
}

}  // namespace alae
