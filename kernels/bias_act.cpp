// torch binding of the bias_act CUDA kernel: torch.ops.alae_kernels.bias_act.
// Modes and references are described in bias_act.h; user-facing semantics in bias_act.py.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "bias_act.h"
#include "torch_dtype.h"

namespace {

// Same strides as `like` for every dimension of size > 1 (size-1 strides are irrelevant).
bool same_layout(const at::Tensor& t, const at::Tensor& like) {
  for (int64_t i = 0; i < like.dim(); ++i)
    if (like.size(i) > 1 && t.stride(i) != like.stride(i)) return false;
  return true;
}

// `t` as a tensor with the layout of `like` (a copy only when the layouts differ).
const void* aligned_ptr(const c10::optional<at::Tensor>& t, const at::Tensor& like, const char* name,
                        std::vector<at::Tensor>& keep) {
  if (!t.has_value() || !t->defined()) return nullptr;
  TORCH_CHECK(t->sizes() == like.sizes() && t->scalar_type() == like.scalar_type() &&
                  t->device() == like.device(),
              "bias_act (cuda): ", name, " must match the shape, dtype and device of the input");
  keep.push_back(same_layout(*t, like) ? *t : at::empty_like(like).copy_(*t));
  return keep.back().data_ptr();
}

at::Tensor bias_act(const at::Tensor& g_in, const c10::optional<at::Tensor>& b,
                    const c10::optional<at::Tensor>& xref, const c10::optional<at::Tensor>& yref,
                    const c10::optional<at::Tensor>& dy, int64_t mode, int64_t dim, int64_t act,
                    double alpha, double gain, double clamp) {
  TORCH_CHECK(g_in.is_cuda(), "bias_act (cuda): input must be a CUDA tensor");
  TORCH_CHECK(mode >= alae::kForward && mode <= alae::kGrad2, "bias_act (cuda): bad mode ", mode);
  TORCH_CHECK(act >= alae::kLinear && act <= alae::kSwish, "bias_act (cuda): bad activation ", act);
  const bool has_x = xref.has_value() && xref->defined();
  const bool has_y = yref.has_value() && yref->defined();
  TORCH_CHECK(mode == alae::kForward || has_x || (act != alae::kRelu && act != alae::kLrelu),
              "bias_act (cuda): the gradient of relu/lrelu needs xref or yref");
  TORCH_CHECK(mode != alae::kGrad2 || (has_x && dy.has_value() && dy->defined()),
              "bias_act (cuda): the second derivative needs xref and dy");
  TORCH_CHECK(mode == alae::kForward || has_x || has_y || clamp < 0,
              "bias_act (cuda): the gradient through a clamp needs xref or yref");
  const at::cuda::OptionalCUDAGuard guard(g_in.device());
  // Dense (possibly permuted, e.g. channels_last) layouts are used as they are.
  const at::Tensor g = g_in.is_non_overlapping_and_dense() ? g_in : g_in.contiguous();
  at::Tensor out = at::empty_like(g);
  if (g.numel() == 0) return out;

  alae::BiasActParams p{};
  std::vector<at::Tensor> keep;
  p.g = g.data_ptr();
  p.xref = aligned_ptr(xref, g, "xref", keep);
  p.yref = aligned_ptr(yref, g, "yref", keep);
  p.dy = aligned_ptr(dy, g, "dy", keep);
  p.numel = g.numel();
  int64_t bias_stride = 1, bias_size = 1;
  if (b.has_value() && b->defined()) {
    TORCH_CHECK(dim >= 0 && dim < g.dim(), "bias_act (cuda): dim out of range");
    TORCH_CHECK(b->dim() == 1 && b->numel() == g.size(dim) && b->scalar_type() == g.scalar_type() &&
                    b->device() == g.device(),
                "bias_act (cuda): b must be 1-D with x.shape[dim] elements, dtype and device of x");
    keep.push_back(b->contiguous());
    p.b = keep.back().data_ptr();
    bias_stride = g.stride(dim);
    bias_size = g.size(dim);
  }
  alae::set_bias_layout(p, bias_stride, bias_size);
  p.out = out.data_ptr();
  p.dtype = alae::dtype_code(g.scalar_type(), "bias_act");
  p.mode = (int)mode;
  p.act = (int)act;
  p.alpha = alpha;
  p.gain = gain;
  p.clamp = clamp;
  const char* err = alae::bias_act_launch(p, at::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == nullptr, "bias_act (cuda): kernel launch failed: ", err);
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(alae_kernels, m) {
  m.def("bias_act(Tensor g, Tensor? b, Tensor? xref, Tensor? yref, Tensor? dy, int mode, int dim, "
        "int act, float alpha, float gain, float clamp) -> Tensor");
}

TORCH_LIBRARY_IMPL(alae_kernels, CUDA, m) { m.impl("bias_act", &bias_act); }
