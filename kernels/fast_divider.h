// Division by a divisor fixed at launch, without a hardware divide per element.
//
// A GPU has no integer divide instruction: `a / b` with b known only at run time costs about
// 20 instructions, so a kernel that divides per element (a bias index, a thread's pixel
// coordinates) spends more issue slots on index math than an fp32 element's memory traffic
// allows. A FastDivider turns n / d into one multiply-high, one add and one shift, with a magic
// number computed once on the host (Granlund and Montgomery, "Division by invariant integers
// using multiplication", PLDI 1994, the round-up variant):
//   shift = ceil(log2 d),  magic = floor(2^32 * (2^shift - d) / d) + 1,
//   n / d = (umulhi(n, magic) + n) >> shift   for 0 <= n < 2^31 and 1 <= d <= 2^31.
// The bound on n keeps umulhi(n, magic) + n below 2^32.
#pragma once
#include <cstdint>

#include "common.h"

namespace alae {

struct FastDivider {
  uint32_t divisor = 1;
  uint32_t magic = 1;  // the values for divisor 1, so a default-constructed divider is valid
  uint32_t shift = 0;
};

// Host side: the divider for d, 1 <= d <= 2^31 (the caller checks the range).
inline FastDivider make_fast_divider(uint32_t d) {
  FastDivider r;
  r.divisor = d;
  r.shift = 0;
  while ((uint64_t(1) << r.shift) < d) ++r.shift;
  r.magic = static_cast<uint32_t>(((uint64_t(1) << 32) * ((uint64_t(1) << r.shift) - d)) / d + 1);
  return r;
}

// n / d for 0 <= n < 2^31.
ALAE_HD uint32_t fast_div(const FastDivider& d, uint32_t n) {
#if defined(__CUDA_ARCH__)
  const uint32_t hi = __umulhi(n, d.magic);
#else
  const uint32_t hi = static_cast<uint32_t>((uint64_t(n) * d.magic) >> 32);
#endif
  return (hi + n) >> d.shift;
}

// n % d for 0 <= n < 2^31.
ALAE_HD uint32_t fast_mod(const FastDivider& d, uint32_t n) { return n - fast_div(d, n) * d.divisor; }

}  // namespace alae
