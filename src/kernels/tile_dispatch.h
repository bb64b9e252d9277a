// Runs any row and token count with tile kernels whose shape is fixed at
// compile time, so their accumulators stay in registers. Kernel<NR, NT>::run
// computes NR weight rows against NT token rows; decode takes kDecodeRows
// rows per pass, tiles of 2-4 tokens take kTileRows.
//
// Every (row, token) result is computed by the same sequence of operations
// whatever NR and NT are, so a sequence's output does not depend on how many
// rows or tokens shared its pass (batching is bit-exact).
#pragma once

#include <cstdint>

namespace osprey::kernels {

template <template <int, int> class Kernel, int kDecodeRows = 4, int kTileRows = 2>
struct TileDispatch {
  template <int NR>
  static void decode_rest(const uint8_t* w, int64_t row_bytes, int64_t left, const uint8_t* a, int64_t n, float* out) {
    if constexpr (NR > 0) {
      if (left == NR) Kernel<NR, 1>::run(w, row_bytes, a, 0, n, out, 0);
      else decode_rest<NR - 1>(w, row_bytes, left, a, n, out);
    }
  }
  static void decode(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const void* act, int64_t n, float* out) {
    const auto* a = static_cast<const uint8_t*>(act);
    int64_t r = 0;
    for (; r + kDecodeRows <= n_rows; r += kDecodeRows)
      Kernel<kDecodeRows, 1>::run(w + r * row_bytes, row_bytes, a, 0, n, out + r, 0);
    if (r < n_rows) decode_rest<kDecodeRows - 1>(w + r * row_bytes, row_bytes, n_rows - r, a, n, out + r);
  }
  template <int NT, int NR>
  static void rows_rest(const uint8_t* w, int64_t row_bytes, int64_t left, const uint8_t* act, int64_t act_stride,
                        int64_t n, float* out, int64_t out_stride) {
    if constexpr (NR > 0) {
      if (left == NR) Kernel<NR, NT>::run(w, row_bytes, act, act_stride, n, out, out_stride);
      else rows_rest<NT, NR - 1>(w, row_bytes, left, act, act_stride, n, out, out_stride);
    }
  }
  template <int NT>
  static void rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const uint8_t* act, int64_t act_stride,
                   int64_t n, float* out, int64_t out_stride) {
    int64_t r = 0;
    for (; r + kTileRows <= n_rows; r += kTileRows)
      Kernel<kTileRows, NT>::run(w + r * row_bytes, row_bytes, act, act_stride, n, out + r, out_stride);
    if (r < n_rows)
      rows_rest<NT, kTileRows - 1>(w + r * row_bytes, row_bytes, n_rows - r, act, act_stride, n, out + r, out_stride);
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

}  // namespace osprey::kernels
