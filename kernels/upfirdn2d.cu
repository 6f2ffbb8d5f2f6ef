// upfirdn2d CUDA kernel: one thread per output pixel, taps read through the L1 cache.
//
// Grid (see upfirdn2d_thread in upfirdn2d.h): x runs along an output row (ox for NCHW, ox*C + c
// for channels_last so that consecutive threads touch consecutive addresses), y along output
// rows, z over planes (n*C + c for NCHW, n for channels_last); y and z loop when the grid is
// capped.
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
  const int inner = blockIdx.x * blockDim.x + threadIdx.x;
  if (inner >= upfirdn2d_row_len(p)) return;
  const int planes = upfirdn2d_planes(p);
  for (int plane = blockIdx.z; plane < planes; plane += gridDim.z)
    for (int oy = blockIdx.y * blockDim.y + threadIdx.y; oy < p.out_h; oy += gridDim.y * blockDim.y)
      upfirdn2d_thread<T, Acc, kChannelsMinor>(p, inner, plane, oy);
}

template <typename T>
cudaError_t launch(const Upfirdn2dParams& p, cudaStream_t stream) {
  const int row_len = upfirdn2d_row_len(p);
  dim3 block(std::min(256, (row_len + 31) / 32 * 32), 1, 1);
  block.y = 256 / block.x;
  dim3 grid((row_len + block.x - 1) / block.x,
            std::min((p.out_h + (int)block.y - 1) / (int)block.y, 65535),
            std::min(upfirdn2d_planes(p), 65535));
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
