// Shared by the CUDA kernels and their host-side callers. No CUDA or torch headers here, so
// the element-wise math in upfirdn2d.h and bias_act.h also compiles as plain C++ (the CPU
// tests compile it with g++ and compare it against independent references).
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#define ALAE_HD __host__ __device__ __forceinline__
#else
#define ALAE_HD inline
#endif

namespace alae {

// Element types the kernels are instantiated for.
enum DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2, kFloat64 = 3 };

// Accumulation type: float for 16/32-bit storage types, double for double.
template <typename T> struct AccType { using type = float; };
template <> struct AccType<double> { using type = double; };

// Conversions between storage types T and accumulation types (float, double). torch builds
// CUDA code with the implicit half/bfloat16 conversions disabled, hence the explicit ones.
template <typename Acc, typename T> struct Cast {
  static ALAE_HD Acc to_acc(T v) { return static_cast<Acc>(v); }
  static ALAE_HD T from_acc(Acc v) { return static_cast<T>(v); }
};
#if defined(__CUDACC__)
template <> struct Cast<float, __half> {
  static ALAE_HD float to_acc(__half v) { return __half2float(v); }
  static ALAE_HD __half from_acc(float v) { return __float2half_rn(v); }
};
template <> struct Cast<float, __nv_bfloat16> {
  static ALAE_HD float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }
  static ALAE_HD __nv_bfloat16 from_acc(float v) { return __float2bfloat16_rn(v); }
};

// Runs launch(T{}) for the storage type named by `dtype` (a DType value) and turns its status into nullptr
// (success) or the CUDA error string: the one dtype switch every kernel entry point shares.
template <typename Launch>
const char* dispatch_dtype(int dtype, Launch&& launch) {
  cudaError_t err = cudaErrorInvalidValue;
  switch (dtype) {
    case kFloat32: err = launch(float{}); break;
    case kFloat16: err = launch(__half{}); break;
    case kBFloat16: err = launch(__nv_bfloat16{}); break;
    case kFloat64: err = launch(double{}); break;
  }
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}
#endif

}  // namespace alae
