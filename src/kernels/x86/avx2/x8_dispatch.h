// Row-count and token-count dispatch for the AVX2 kernels that keep eight
// rows interleaved in one group (RowKernel::row_group == 8). Tile<NT>::run
// computes one group's 8 rows against NT <= 4 token rows; row counts and
// offsets are whole groups. Include only from files built with the AVX2 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace osprey::kernels::avx2 {

// Four activation bytes, broadcast to every 32-bit lane: the same four
// elements meet each of the eight rows.
inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

template <template <int> class Tile>
struct X8Dispatch {
  static constexpr int64_t kRows = 8;
  static void rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const void* act, int64_t n, float* out) {
    for (int64_t r = 0; r < n_rows; r += kRows)
      Tile<1>::run(w + r * row_bytes, static_cast<const uint8_t*>(act), 0, n, out + r, 0);
  }
  template <int NT>
  static void tiles(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const uint8_t* act, int64_t act_stride,
                    int64_t n, float* out, int64_t out_stride) {
    for (int64_t r = 0; r < n_rows; r += kRows)
      Tile<NT>::run(w + r * row_bytes, act, act_stride, n, out + r, out_stride);
  }
  static void tile(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const uint8_t* act, int64_t act_stride,
                   int n_tok, int64_t n, float* out, int64_t out_stride) {
    switch (n_tok) {
      case 4: tiles<4>(w, row_bytes, n_rows, act, act_stride, n, out, out_stride); break;
      case 3: tiles<3>(w, row_bytes, n_rows, act, act_stride, n, out, out_stride); break;
      case 2: tiles<2>(w, row_bytes, n_rows, act, act_stride, n, out, out_stride); break;
      default: tiles<1>(w, row_bytes, n_rows, act, act_stride, n, out, out_stride); break;
    }
  }
};

}  // namespace osprey::kernels::avx2
