// upfirdn2d CUDA kernel: one thread per output pixel, taps read through the L1 cache.
//
// Grid: x runs along an output row (ox for NCHW, ox*C + c for channels_last so that
// consecutive threads touch consecutive addresses), y along output rows, z over planes
// (n*C + c for NCHW, n for channels_last); y and z loop when the grid is capped.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "upfirdn2d.h"

namespace alae {
namespace {

template <typename T, bool kChannelsMinor>
__global__ void upfirdn2d_kernel(const Upfirdn2dParams p) {
  using Acc = typename AccType<T>::type;
  const int row_len = kChannelsMinor ? p.out_w * p.c : p.out_w;
  const int inner = blockIdx.x * blockDim.x + threadIdx.x;
  if (inner >= row_len) return;
  const int ox = kChannelsMinor ? inner / p.c : inner;
  const int planes = kChannelsMinor ? p.n : p.n * p.c;
  for (int plane = blockIdx.z; plane < planes; plane += gridDim.z) {
    const int n = kChannelsMinor ? plane : plane / p.c;
    const int c = kChannelsMinor ? inner - ox * p.c : plane - n * p.c;
    for (int oy = blockIdx.y * blockDim.y + threadIdx.y; oy < p.out_h; oy += gridDim.y * blockDim.y)
      upfirdn2d_store<T, Acc>(p, n, c, oy, ox);
  }
}

template <typename T>
cudaError_t launch(const Upfirdn2dParams& p, cudaStream_t stream) {
  const int row_len = p.channels_minor ? p.out_w * p.c : p.out_w;
  const int planes = p.channels_minor ? p.n : p.n * p.c;
  dim3 block(std::min(256, (row_len + 31) / 32 * 32), 1, 1);
  block.y = 256 / block.x;
  dim3 grid((row_len + block.x - 1) / block.x,
            std::min((p.out_h + (int)block.y - 1) / (int)block.y, 65535),
            std::min(planes, 65535));
  if (p.channels_minor)
    upfirdn2d_kernel<T, true><<<grid, block, 0, stream>>>(p);
  else
    upfirdn2d_kernel<T, false><<<grid, block, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

const char* upfirdn2d_launch(const Upfirdn2dParams& p, void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  return dispatch_dtype(p.dtype, [&](auto tag) { return launch<decltype(tag)>(p, s); });
}

}  // namespace alae
