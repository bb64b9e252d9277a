// Pieces shared by the AVX2 kernels that keep eight rows interleaved, one
// row per 32-bit lane of a 256-bit register (kernels/group_dispatch.h does
// their row and token dispatch). Include only from files built with the
// AVX2 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/group_dispatch.h"

namespace osprey::kernels::avx2 {

// Four activation bytes, broadcast to every 32-bit lane: the same four
// elements meet each of the eight rows.
inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// The rows of one interleaved group.
constexpr int kX8Rows = 8;

}  // namespace osprey::kernels::avx2
