// Row-count and token-count dispatch for the kernels that keep a group of
// rows interleaved (RowKernel::row_group == Kernel::kRows > 1), whatever the
// instruction set. Kernel::tile<NT> computes one group's kRows rows against
// NT token rows, NT up to Kernel::kTileTokens (4 when the kernel does not
// say); row counts and offsets are whole groups.
#pragma once

#include <cstdint>

#include "kernels/dispatch.h"

namespace osprey::kernels {

template <class Kernel>
constexpr int group_tile_tokens() {
  if constexpr (requires { Kernel::kTileTokens; }) return Kernel::kTileTokens;
  else return 4;
}

template <class Kernel>
struct GroupDispatch {
  static constexpr int64_t kRows = Kernel::kRows;
  static constexpr int kTileTokens = group_tile_tokens<Kernel>();
  static void rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const void* act, int64_t n, float* out) {
    for (int64_t r = 0; r < n_rows; r += kRows)
      Kernel::template tile<1>(w + r * row_bytes, static_cast<const uint8_t*>(act), 0, n, out + r, 0);
  }
  template <int NT>
  static void tiles(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const uint8_t* act, int64_t act_stride,
                    int64_t n, float* out, int64_t out_stride) {
    for (int64_t r = 0; r < n_rows; r += kRows)
      Kernel::template tile<NT>(w + r * row_bytes, act, act_stride, n, out + r, out_stride);
  }
  // n_tok in [1, kTileTokens], found by counting down from the largest.
  template <int NT = kTileTokens>
  static void tile(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const uint8_t* act, int64_t act_stride,
                   int n_tok, int64_t n, float* out, int64_t out_stride) {
    if constexpr (NT > 1) {
      if (n_tok < NT) return tile<NT - 1>(w, row_bytes, n_rows, act, act_stride, n_tok, n, out, out_stride);
    }
    tiles<NT>(w, row_bytes, n_rows, act, act_stride, n, out, out_stride);
  }
};

// The RowKernel of an interleaved kernel, its activation encoding and layout.
template <class Kernel>
RowKernel group_row_kernel(int64_t (*act_bytes)(int64_t), void (*encode)(const float*, void*, int64_t),
                           void (*repack)(const uint8_t*, uint8_t*, int64_t),
                           void (*unpack)(const uint8_t*, int64_t, uint8_t*, int64_t)) {
  RowKernel k;
  k.act_bytes = act_bytes;
  k.encode = encode;
  k.dot_rows = GroupDispatch<Kernel>::rows;
  k.dot_tile = GroupDispatch<Kernel>::template tile<>;
  k.tile_tokens = GroupDispatch<Kernel>::kTileTokens;
  k.row_group = GroupDispatch<Kernel>::kRows;
  k.repack = repack;
  k.unpack = unpack;
  return k;
}

}  // namespace osprey::kernels
