// Pieces shared by the AVX2 kernels. Include only from files built with the
// AVX2 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace osprey::kernels::avx2 {

// How far ahead of each weight stream the kernels ask for data, one prefetch
// per cache line. Without it the hardware prefetcher leaves decode at about
// half the bandwidth on the project's Zen 3 machine; `osprey bench -n 32` on
// TinyLlama q4_0 (per-row packed kernel) went 8.8 -> 11.2 -> 14.1 -> 15.3 ->
// 16.0 -> 15.1 tokens/s for 0, 512, 1024, 2048, 4096 and 8192 bytes (one sitting).
constexpr int64_t kPrefetchBytes = 4096;

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

}  // namespace osprey::kernels::avx2
