// bias_act: launch parameters and the math of one element, in three modes:
//   kForward: out = clamp(act(g + b) * gain)                         (g = x)
//   kGrad:    out = g * gain * act'(s) * pass                         (g = dy; dx)
//   kGrad2:   out = g * dy * gain * act''(s) * pass                   (g = d(dx); d(dx)/dx)
// where s = xref + b is the pre-activation of the forward pass, and pass = 0 where the
// forward output was clamped. act' is taken from s when xref is given (smooth activations),
// else from the forward output yref (relu, lrelu: only its sign matters), else it is 1
// (linear without clamp). act'' needs xref.
#pragma once
#include <math.h>

#include "common.h"
#include "fast_divider.h"

namespace alae {

enum BiasActAct : int {
  kLinear = 0, kRelu = 1, kLrelu = 2, kTanh = 3, kSigmoid = 4,
  kElu = 5, kSelu = 6, kSoftplus = 7, kSwish = 8
};
enum BiasActMode : int { kForward = 0, kGrad = 1, kGrad2 = 2 };

// Tensors up to this many elements use 32-bit indices (with room for the grid-stride overshoot).
constexpr int64_t kMaxNumel32 = INT32_MAX / 2;

struct BiasActParams {
  const void* g;     // kForward: x; kGrad: dy; kGrad2: d(dx)
  const void* b;     // bias [bias_size] or nullptr
  const void* xref;  // forward input x or nullptr
  const void* yref;  // forward output y or nullptr
  const void* dy;    // kGrad2: the dy given to kGrad
  void* out;
  int dtype, mode, act;
  double alpha, gain, clamp;  // clamp < 0: no clamp
  int64_t numel;
  // All tensors share one dense layout; the bias index of memory offset i is
  // (i / bias_stride) % bias_size. The dividers serve 32-bit indexing (numel <= kMaxNumel32).
  int64_t bias_stride, bias_size;
  FastDivider bias_stride_div, bias_size_div;
};

// Host side: sets the bias layout (stride and size in elements) and its dividers. Call after
// setting numel; a size of 1 (or no bias) takes stride 1, as any stride gives index 0 then.
inline void set_bias_layout(BiasActParams& p, int64_t stride, int64_t size) {
  if (size == 1) stride = 1;
  p.bias_stride = stride;
  p.bias_size = size;
  if (p.numel <= kMaxNumel32) {  // then stride and size are below 2^31 too
    p.bias_stride_div = make_fast_divider(static_cast<uint32_t>(stride));
    p.bias_size_div = make_fast_divider(static_cast<uint32_t>(size));
  }
}

// Bias index of memory offset i: multiply-high division for 32-bit indices, plain for 64-bit.
template <typename Index>
ALAE_HD Index bias_index(const BiasActParams& p, Index i) {
  if constexpr (sizeof(Index) <= 4) {
    return static_cast<Index>(fast_mod(p.bias_size_div, fast_div(p.bias_stride_div, static_cast<uint32_t>(i))));
  } else {
    return (i / static_cast<Index>(p.bias_stride)) % static_cast<Index>(p.bias_size);
  }
}

// Returns nullptr on success, else a CUDA error string. `stream` is a cudaStream_t.
const char* bias_act_launch(const BiasActParams& p, void* stream);

template <typename S> ALAE_HD S ba_sigmoid(S s) { return S(1) / (S(1) + exp(-s)); }

constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

template <typename S>
ALAE_HD S act_value(int act, S s, S alpha) {
  switch (act) {
    case kRelu: return s > S(0) ? s : S(0);
    case kLrelu: return s > S(0) ? s : s * alpha;
    case kTanh: return tanh(s);
    case kSigmoid: return ba_sigmoid(s);
    case kElu: return s > S(0) ? s : expm1(s);
    case kSelu: return s > S(0) ? S(kSeluScale) * s : S(kSeluScale * kSeluAlpha) * expm1(s);
    case kSoftplus: return s > S(20) ? s : log1p(exp(s));
    case kSwish: return s * ba_sigmoid(s);
    default: return s;
  }
}

template <typename S>
ALAE_HD S act_deriv(int act, S s, S alpha) {
  switch (act) {
    case kRelu: return s > S(0) ? S(1) : S(0);
    case kLrelu: return s > S(0) ? S(1) : alpha;
    case kTanh: { const S t = tanh(s); return S(1) - t * t; }
    case kSigmoid: { const S q = ba_sigmoid(s); return q * (S(1) - q); }
    case kElu: return s > S(0) ? S(1) : exp(s);
    case kSelu: return s > S(0) ? S(kSeluScale) : S(kSeluScale * kSeluAlpha) * exp(s);
    case kSoftplus: return ba_sigmoid(s);
    case kSwish: { const S q = ba_sigmoid(s); return q + s * q * (S(1) - q); }
    default: return S(1);
  }
}

template <typename S>
ALAE_HD S act_deriv2(int act, S s) {
  switch (act) {
    case kTanh: { const S t = tanh(s); return S(-2) * t * (S(1) - t * t); }
    case kSigmoid: { const S q = ba_sigmoid(s); return q * (S(1) - q) * (S(1) - S(2) * q); }
    case kElu: return s > S(0) ? S(0) : exp(s);
    case kSelu: return s > S(0) ? S(0) : S(kSeluScale * kSeluAlpha) * exp(s);
    case kSoftplus: { const S q = ba_sigmoid(s); return q * (S(1) - q); }
    case kSwish: { const S q = ba_sigmoid(s); return q * (S(1) - q) * (S(2) + s * (S(1) - S(2) * q)); }
    default: return S(0);  // piecewise linear
  }
}

// One element; has_x / has_y say whether xref / yref were given.
template <typename S>
ALAE_HD S bias_act_element(int mode, int act, S alpha, S gain, S clamp, bool has_x, bool has_y,
                           S g, S bias, S xref, S yref, S dy) {
  if (mode == kForward) {
    S y = act_value(act, g + bias, alpha) * gain;
    if (clamp >= S(0)) y = y > clamp ? clamp : (y < -clamp ? -clamp : y);
    return y;
  }
  const S s = xref + bias;
  S d;
  bool pass = true;
  if (has_x) {
    d = mode == kGrad ? act_deriv(act, s, alpha) : act_deriv2(act, s) * dy;
    if (clamp >= S(0)) {  // the forward clamped where |act(s) * gain| > clamp
      const S y = act_value(act, s, alpha) * gain;
      pass = y <= clamp && y >= -clamp;
    }
  } else {
    // act(s) > 0 exactly where the forward output has the sign of gain.
    const bool positive = gain > S(0) ? yref > S(0) : yref < S(0);
    d = act == kRelu ? (positive ? S(1) : S(0)) : act == kLrelu ? (positive ? S(1) : alpha) : S(1);
    if (mode == kGrad2) d = S(0);
    if (clamp >= S(0) && has_y) pass = yref < clamp && yref > -clamp;
  }
  return pass ? g * gain * d : S(0);
}

// Computes and stores element i (a memory offset): the body of the CUDA kernel's loop.
template <typename T, typename S, typename Index>
ALAE_HD void bias_act_store(const BiasActParams& p, Index i) {
  using C = Cast<S, T>;
  const T* b = static_cast<const T*>(p.b);
  const T* xref = static_cast<const T*>(p.xref);
  const T* yref = static_cast<const T*>(p.yref);
  const T* dy = static_cast<const T*>(p.dy);
  const S bias = b ? C::to_acc(b[bias_index(p, i)]) : S(0);
  const S v = bias_act_element<S>(p.mode, p.act, static_cast<S>(p.alpha), static_cast<S>(p.gain),
                                  static_cast<S>(p.clamp), xref != nullptr, yref != nullptr,
                                  C::to_acc(static_cast<const T*>(p.g)[i]), bias,
                                  xref ? C::to_acc(xref[i]) : S(0), yref ? C::to_acc(yref[i]) : S(0),
                                  dy ? C::to_acc(dy[i]) : S(0));
  static_cast<T*>(p.out)[i] = C::from_acc(v);
}

}  // namespace alae
