// bias_act CUDA kernel: element-wise over the memory of dense tensors sharing one layout,
// grid-stride loop, float math for 16/32-bit types and double math for float64.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "bias_act.h"

namespace alae {
namespace {

template <typename T, typename Index>
__global__ void bias_act_kernel(const BiasActParams p) {
  using S = typename AccType<T>::type;
  const Index numel = static_cast<Index>(p.numel);
  const Index step = static_cast<Index>(blockDim.x) * gridDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += step)
    bias_act_store<T, S, Index>(p, i);
}

// Enough blocks to fill the device; the grid-stride loop covers the rest.
int grid_limit() {
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  return std::max(sms, 1) * 32;
}

template <typename T>
cudaError_t launch(const BiasActParams& p, cudaStream_t stream) {
  constexpr int kBlock = 256;
  const int64_t blocks = std::min<int64_t>((p.numel + kBlock - 1) / kBlock, grid_limit());
  if (p.numel <= kMaxNumel32)
    bias_act_kernel<T, int32_t><<<(unsigned)blocks, kBlock, 0, stream>>>(p);
  else
    bias_act_kernel<T, int64_t><<<(unsigned)blocks, kBlock, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

const char* bias_act_launch(const BiasActParams& p, void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  return dispatch_dtype(p.dtype, [&](auto tag) { return launch<decltype(tag)>(p, s); });
}

}  // namespace alae
