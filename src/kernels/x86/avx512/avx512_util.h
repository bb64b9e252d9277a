// Pieces shared by the AVX-512 kernels. Include only from files built with
// the AVX-512 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace osprey::kernels::avx512 {

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

// How far ahead each row stream is fetched. Measured on the project's Zen 4
// machine with `osprey_kernel_bench --benchmark_filter=gemv_stream` (a 590 MB
// q4_0 matrix, 2 threads): 768 bytes gave 23 GB/s, 4096 gave 37, 8192 gave 46.
constexpr int kPrefetchBytes = 8192;


// Runs any row count with the fixed-size kernels: decode (one token) takes 4
// rows per pass; tiles of 2-4 tokens take 2 rows, so that 2 x 4 accumulators
// and 4 activation pairs stay in registers.
template <template <int, int> class Kernel>
struct TileDispatch {
  static void decode(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const void* act, int64_t n, float* out) {
    const auto* a = static_cast<const uint8_t*>(act);
    int64_t r = 0;
    for (; r + 4 <= n_rows; r += 4) Kernel<4, 1>::run(w + r * row_bytes, row_bytes, a, 0, n, out + r, 0);
    switch (n_rows - r) {
      case 3: Kernel<3, 1>::run(w + r * row_bytes, row_bytes, a, 0, n, out + r, 0); break;
      case 2: Kernel<2, 1>::run(w + r * row_bytes, row_bytes, a, 0, n, out + r, 0); break;
      case 1: Kernel<1, 1>::run(w + r * row_bytes, row_bytes, a, 0, n, out + r, 0); break;
      default: break;
    }
  }
  template <int NT>
  static void rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const uint8_t* act, int64_t act_stride,
                   int64_t n, float* out, int64_t out_stride) {
    int64_t r = 0;
    for (; r + 2 <= n_rows; r += 2)
      Kernel<2, NT>::run(w + r * row_bytes, row_bytes, act, act_stride, n, out + r, out_stride);
    if (r < n_rows) Kernel<1, NT>::run(w + r * row_bytes, row_bytes, act, act_stride, n, out + r, out_stride);
  }
  static void tile(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const uint8_t* act, int64_t act_stride,
                   int n_tok, int64_t n, float* out, int64_t out_stride) {
    switch (n_tok) {
      case 4: rows<4>(w, row_bytes, n_rows, act, act_stride, n, out, out_stride); break;
      case 3: rows<3>(w, row_bytes, n_rows, act, act_stride, n, out, out_stride); break;
      case 2: rows<2>(w, row_bytes, n_rows, act, act_stride, n, out, out_stride); break;
      default: rows<1>(w, row_bytes, n_rows, act, act_stride, n, out, out_stride); break;
    }
  }
};


}  // namespace osprey::kernels::avx512
