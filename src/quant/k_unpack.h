// The integer quants of a K-quant super-block in element order, unpacked
// from their bit planes. The reference kernels and the GPU weight packing
// (backends/weight_layout) read blocks through these.
#pragma once

#include <cstdint>

#include "quant/blocks.h"

namespace osprey::quant {

// Q4_K. Element order: each 64-element chunk c stores elements [64c, 64c+32) in the
// low nibbles of qs[32c..32c+32) and [64c+32, 64c+64) in the high nibbles.
inline void unpack_q4_k(const BlockQ4_K& b, uint8_t q[kQK_K]) {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      q[64 * c + l] = b.qs[32 * c + l] & 0x0F;
      q[64 * c + 32 + l] = b.qs[32 * c + l] >> 4;
    }
}

// Q5_K: like Q4_K, plus a fifth bit: for chunk c, bit 2c of qh[l] belongs to
// element 64c+l and bit 2c+1 to element 64c+32+l.
inline void unpack_q5_k(const BlockQ5_K& b, uint8_t q[kQK_K]) {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      q[64 * c + l] = static_cast<uint8_t>((b.qs[32 * c + l] & 0x0F) | (((b.qh[l] >> (2 * c)) & 1) << 4));
      q[64 * c + 32 + l] = static_cast<uint8_t>((b.qs[32 * c + l] >> 4) | (((b.qh[l] >> (2 * c + 1)) & 1) << 4));
    }
}

// Q6_K, offset to signed. Each 128-element half h uses ql[64h..64h+64) and qh[32h..32h+32). For l in
// [0,32): elements l, l+32, l+64, l+96 take the low nibble of ql[l], low of
// ql[l+32], high of ql[l], high of ql[l+32], and bit pairs 0,2,4,6 of qh[l].
inline void unpack_q6_k(const BlockQ6_K& b, int8_t q[kQK_K]) {
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    int8_t* y = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      y[l] = static_cast<int8_t>(((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32);
      y[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32);
      y[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      y[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}

}  // namespace osprey::quant
