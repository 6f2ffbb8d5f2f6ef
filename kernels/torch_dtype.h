// For the torch bindings (*.cpp): the kernels' DType code of a torch scalar type.
#pragma once
#include <ATen/ATen.h>

#include "common.h"

namespace alae {

// Errors naming `op` for types the kernels are not instantiated for.
inline int dtype_code(at::ScalarType t, const char* op) {
  switch (t) {
    case at::kFloat: return kFloat32;
    case at::kHalf: return kFloat16;
    case at::kBFloat16: return kBFloat16;
    case at::kDouble: return kFloat64;
    default: TORCH_CHECK(false, op, " (cuda): unsupported dtype ", t);
  }
  return -1;
}

}  // namespace alae
