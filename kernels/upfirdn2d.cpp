// torch binding of the upfirdn2d CUDA kernel: torch.ops.alae_kernels.upfirdn2d.
// Argument semantics are documented in upfirdn2d.py; the filter here is always 2-D (the
// Python wrapper runs a separable filter as two 1-row/1-column passes).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <limits>

#include "upfirdn2d.h"
#include "torch_dtype.h"

namespace {

at::Tensor upfirdn2d(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy,
                     int64_t downx, int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0,
                     int64_t pady1, bool flip, double gain) {
  TORCH_CHECK(x.is_cuda() && x.dim() == 4, "upfirdn2d (cuda): x must be a 4-D CUDA tensor");
  TORCH_CHECK(f.device() == x.device() && f.dim() == 2 && f.numel() > 0,
              "upfirdn2d (cuda): f must be a non-empty 2-D tensor on the device of x");
  const auto acc_type = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK(f.scalar_type() == acc_type, "upfirdn2d (cuda): f must be ", acc_type, " for x of ",
              x.scalar_type());
  TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1,
              "upfirdn2d (cuda): up and down must be >= 1");
  const int64_t n = x.size(0), c = x.size(1), in_h = x.size(2), in_w = x.size(3);
  const int64_t fh = f.size(0), fw = f.size(1);
  const int64_t span_h = in_h * upy + pady0 + pady1 - fh;
  const int64_t span_w = in_w * upx + padx0 + padx1 - fw;
  TORCH_CHECK(span_h >= 0 && span_w >= 0, "upfirdn2d (cuda): output would be empty");
  const int64_t out_h = span_h / downy + 1, out_w = span_w / downx + 1;
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  TORCH_CHECK(n * c <= kMax && out_w * c <= kMax && in_h * upy + pady0 <= kMax &&
                  in_w * upx + padx0 <= kMax && out_h * downy <= kMax && out_w * downx <= kMax &&
                  std::abs(padx0) <= kMax && std::abs(pady0) <= kMax,
              "upfirdn2d (cuda): sizes exceed the 32-bit index range");

  // The output keeps channels_last when the input has it.
  const bool channels_last = c > 1 && x.stride(1) == 1;
  const at::cuda::OptionalCUDAGuard guard(x.device());
  at::Tensor y = at::empty({n, c, out_h, out_w}, x.options().memory_format(
      channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
  if (y.numel() == 0) return y;
  const at::Tensor fc = f.contiguous();

  alae::Upfirdn2dParams p{};
  p.x = x.data_ptr();
  p.y = y.data_ptr();
  p.f = fc.data_ptr();
  p.dtype = alae::dtype_code(x.scalar_type(), "upfirdn2d");
  p.n = (int)n; p.c = (int)c; p.in_h = (int)in_h; p.in_w = (int)in_w;
  p.out_h = (int)out_h; p.out_w = (int)out_w;
  p.upx = (int)upx; p.upy = (int)upy; p.downx = (int)downx; p.downy = (int)downy;
  p.padx0 = (int)padx0; p.pady0 = (int)pady0;
  p.fw = (int)fw; p.fh = (int)fh;
  p.flip = flip;
  p.gain = gain;
  for (int i = 0; i < 4; ++i) {
    p.sx[i] = x.stride(i);
    p.sy[i] = y.stride(i);
  }
  p.channels_minor = channels_last;
  p.c_div = alae::make_fast_divider((uint32_t)c);
  const char* err = alae::upfirdn2d_launch(p, at::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == nullptr, "upfirdn2d (cuda): kernel launch failed: ", err);
  return y;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(alae_kernels, m) {
  m.def("upfirdn2d(Tensor x, Tensor f, int upx, int upy, int downx, int downy, int padx0, "
        "int padx1, int pady0, int pady1, bool flip, float gain) -> Tensor");
}

TORCH_LIBRARY_IMPL(alae_kernels, CUDA, m) { m.impl("upfirdn2d", &upfirdn2d); }
