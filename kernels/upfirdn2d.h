// upfirdn2d: launch parameters and the value of one output pixel.
//
// Semantics (per channel plane): insert up-1 zeros after every input pixel, pad with zeros
// (pad0 before; negative crops), convolve "valid" with the [fh, fw] filter (flip=false: true
// convolution, flip=true: correlation), keep every down-th pixel, multiply by gain.
#pragma once
#include "common.h"

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
};

// Returns nullptr on success, else a CUDA error string. `stream` is a cudaStream_t.
const char* upfirdn2d_launch(const Upfirdn2dParams& p, void* stream);

ALAE_HD int floor_mod(int a, int m) {
  const int r = a % m;
  return r < 0 ? r + m : r;
}

// Output pixel (oy, ox) of the plane starting at `x` (strides sh, sw), before the output cast.
// Tap j (correlation order) of output o meets padded pixel o*down + j, i.e. upsampled pixel
// u = o*down + j - pad0, which is nonzero only for u = i*up with 0 <= i < in: a polyphase
// walk visits just those taps, j = (-u0) mod up, then every up-th.
template <typename Acc, typename T>
ALAE_HD Acc upfirdn2d_pixel(const Upfirdn2dParams& p, const T* x, int64_t sh, int64_t sw,
                            const Acc* f, int oy, int ox) {
  const int uy0 = oy * p.downy - p.pady0;
  const int ux0 = ox * p.downx - p.padx0;
  const int jx0 = floor_mod(-ux0, p.upx);
  Acc acc = 0;
  for (int jy = floor_mod(-uy0, p.upy); jy < p.fh; jy += p.upy) {
    const int iy = (uy0 + jy) / p.upy;  // exact division
    if (iy < 0) continue;
    if (iy >= p.in_h) break;
    const Acc* frow = f + (p.flip ? jy : p.fh - 1 - jy) * p.fw;
    const T* xrow = x + iy * sh;
    for (int jx = jx0; jx < p.fw; jx += p.upx) {
      const int ix = (ux0 + jx) / p.upx;
      if (ix < 0) continue;
      if (ix >= p.in_w) break;
      acc += frow[p.flip ? jx : p.fw - 1 - jx] * Cast<Acc, T>::to_acc(xrow[ix * sw]);
    }
  }
  return acc * static_cast<Acc>(p.gain);
}

// Computes and stores output pixel (n, c, oy, ox): the body of the CUDA kernel's thread.
template <typename T, typename Acc>
ALAE_HD void upfirdn2d_store(const Upfirdn2dParams& p, int n, int c, int oy, int ox) {
  const T* x = static_cast<const T*>(p.x) + n * p.sx[0] + c * p.sx[1];
  const Acc v = upfirdn2d_pixel<Acc>(p, x, p.sx[2], p.sx[3], static_cast<const Acc*>(p.f), oy, ox);
  T* y = static_cast<T*>(p.y);
  y[n * p.sy[0] + c * p.sy[1] + oy * p.sy[2] + ox * p.sy[3]] = Cast<Acc, T>::from_acc(v);
}

}  // namespace alae
