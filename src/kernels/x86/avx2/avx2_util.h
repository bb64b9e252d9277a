// Pieces shared by the AVX2 kernels. Include only from files built with the
// AVX2 flags.
#pragma once

#include <immintrin.h>

namespace osprey::kernels::avx2 {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace osprey::kernels::avx2
