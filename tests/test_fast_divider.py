"""kernels/fast_divider.h (multiply-high division by a launch-time divisor) against Python's `//`.

The header is compiled for the host with g++; the quotients and remainders of every numerator
in the documented range [0, 2^31) are checked for a sample of divisors covering 1..1000, powers
of two and their neighbours, and random divisors up to 2^31.
"""
import ctypes

import numpy as np
import pytest
from host_kernels import compile_host_harness

HOST_HARNESS = r"""
#include "fast_divider.h"
extern "C" void divide_table(const uint32_t* divisors, int nd, const uint32_t* numerators, int nn,
                             uint32_t* quotients, uint32_t* remainders) {
  for (int i = 0; i < nd; ++i) {
    const alae::FastDivider d = alae::make_fast_divider(divisors[i]);
    for (int j = 0; j < nn; ++j) {
      quotients[i * nn + j] = alae::fast_div(d, numerators[j]);
      remainders[i * nn + j] = alae::fast_mod(d, numerators[j]);
    }
  }
}
extern "C" void default_divider(uint32_t* fields) {
  const alae::FastDivider d{};
  fields[0] = d.divisor; fields[1] = alae::fast_div(d, 12345); fields[2] = alae::fast_mod(d, 12345);
}
"""

LIMIT = 2 ** 31


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return compile_host_harness(tmp_path_factory.mktemp("fast_divider_host"), HOST_HARNESS)


def _divide(lib, divisors, numerators):
    divisors = np.ascontiguousarray(divisors, dtype=np.uint32)
    numerators = np.ascontiguousarray(numerators, dtype=np.uint32)
    q = np.zeros((len(divisors), len(numerators)), dtype=np.uint32)
    r = np.zeros_like(q)
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    lib.divide_table(ptr(divisors), len(divisors), ptr(numerators), len(numerators), ptr(q), ptr(r))
    return q.astype(np.int64), r.astype(np.int64)


def test_matches_integer_division(lib):
    rng = np.random.default_rng(0)
    powers = [2 ** k for k in range(32)]
    divisors = sorted(set(range(1, 1001)) | set(powers) | {p + 1 for p in powers[:-1]} | {p - 1 for p in powers[2:]}
                      | set(rng.integers(1, LIMIT + 1, size=200).tolist()))
    numerators = np.unique(np.concatenate([
        np.arange(0, 5000),
        rng.integers(0, LIMIT, size=3000),
        LIMIT - 1 - np.arange(100),
        [k * m + e for m in (3, 7, 1000, 65537, 2 ** 16, 2 ** 30 - 1) for k in (1, 2, 5, 1000)
         for e in (-1, 0, 1) if 0 <= k * m + e < LIMIT],
    ]).astype(np.int64))
    q, r = _divide(lib, divisors, numerators)
    d = np.asarray(divisors, dtype=np.int64)[:, None]
    np.testing.assert_array_equal(q, numerators[None, :] // d)
    np.testing.assert_array_equal(r, numerators[None, :] % d)


def test_numerators_beside_multiples_across_the_range(lib):
    """A magic number that is slightly off first fails just below or at a multiple of the divisor."""
    for divisor in (3, 641, 2 ** 30 + 3, LIMIT - 1):
        k = np.unique(np.linspace(1, (LIMIT - 1) // divisor, num=min(200_000, (LIMIT - 1) // divisor), dtype=np.int64))
        numerators = np.concatenate([k * divisor - 1, k * divisor])
        q, r = _divide(lib, [divisor], numerators)
        np.testing.assert_array_equal(q[0], numerators // divisor)
        np.testing.assert_array_equal(r[0], numerators % divisor)


def test_default_divider_divides_by_one(lib):
    fields = (ctypes.c_uint32 * 3)()
    lib.default_divider(fields)
    assert list(fields) == [1, 12345, 0]
