// Pieces shared by the AVX-512 kernels. Include only from files built with
// the AVX-512 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace osprey::kernels::avx512 {

// Sixteen fp16 or bf16 values widened to fp32 (exact either way).
inline __m512 load_f16x16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 load_bf16x16(const uint16_t* p) {
  const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

// [lo x8 | hi x8]; AVX-512F only (the float form of this insert needs DQ).
inline __m512 pair(float lo, float hi) {
  return _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_castps_si256(_mm256_set1_ps(lo))),
                                                _mm256_castps_si256(_mm256_set1_ps(hi)), 1));
}

// Scales of blocks i and i+1 as [da_i x8 | da_i+1 x8].
inline __m512 pair_scales(const float* d, int64_t i) { return pair(d[i], d[i + 1]); }

// Per-lane sums of 4 activation bytes, times `shift` as a power of two.
inline __m512i lane_sums(__m512i a, int shift) {
  const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), a);
  return _mm512_slli_epi32(sums, shift);
}

// Four activation bytes broadcast to every 32-bit lane: in the kernels that
// interleave rows, the same four elements meet each of 16 rows.
inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// How far ahead each row stream is fetched: the distance at which
// `osprey_kernel_bench --benchmark_filter=gemv_stream` streamed fastest
// (README, "Measurements behind the kernels").
constexpr int kPrefetchBytes = 8192;

// The same for the kernels that read rows interleaved in groups (one stream
// for all the rows of a group), measured with the 16-row Q4_0 layout.
constexpr int kGroupPrefetchBytes = 2048;



}  // namespace osprey::kernels::avx512
