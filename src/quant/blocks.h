// Block layouts of the GGUF weight formats, byte for byte as they sit in a
// file. A block covers `kBlockLen` consecutive elements of one row.
#pragma once

#include <cstdint>

namespace osprey::quant {

constexpr int kQK = 32;    // elements per block of the legacy formats
constexpr int kQK_K = 256; // elements per super-block of the k-quants
constexpr int kKScaleBytes = 12;

struct BlockQ4_0 {  // x = (q - 8) * d
  uint16_t d;       // fp16
  uint8_t qs[kQK / 2];  // element j in the low nibble of qs[j], element j+16 in the high nibble
};
struct BlockQ4_1 {  // x = q * d + m
  uint16_t d, m;
  uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {  // x = (q - 16) * d, bit 4 of q in qh
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ5_1 {  // x = q * d + m
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ8_0 {  // x = q * d
  uint16_t d;
  int8_t qs[kQK];
};
struct BlockQ8_1 {  // activations for Q4_1/Q5_1: s = d * sum(qs) carries the offset term
  uint16_t d, s;
  int8_t qs[kQK];
};
// Q2_K and Q3_K share the 2-bit planes: the low two bits of element
// 128h + 32j + l (h the half, j in 0..3, l in 0..31) are bits 2j, 2j+1 of
// qs[32h + l]. Both have 16 sub-blocks of 16 elements.
struct BlockQ2_K {  // x = d * (sc & 15) * q - dmin * (sc >> 4), sc = scales[sub-block]
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d, dmin;
};
struct BlockQ3_K {  // x = d * (sc - 32) * (q - 4), q's third bit in hmask, sc 6-bit packed in 12 bytes
  uint8_t hmask[kQK_K / 8];  // element 128h + 32j + l: bit 4h + j of hmask[l]
  uint8_t qs[kQK_K / 4];
  uint8_t scales[kKScaleBytes];
  uint16_t d;
};
struct BlockQ4_K {  // 8 sub-blocks of 32: x = d*sc*q - dmin*m, sc and m 6-bit
  uint16_t d, dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQK_K / 2];
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
struct BlockQ6_K {  // 16 sub-blocks of 16: x = d * sc * (q - 32), sc int8
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
struct BlockQ8_K {  // activations for the k-quants
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];  // sums of each 16 qs, so the k-quant min terms cost one multiply per 16
};

// MXFP4 (OCP microscaling): 32 FP4 (E2M1) values sharing a power-of-two
// scale. x = kMxfp4Levels[q] * 2^(e - 128): the table holds twice each E2M1
// value, so that it is all integers, and the scale is halved to match.
struct BlockMXFP4 {
  uint8_t e;            // E8M0 exponent, bias 127
  uint8_t qs[kQK / 2];  // element j in the low nibble of qs[j], element j+16 in the high nibble
};
inline constexpr int8_t kMxfp4Levels[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

static_assert(sizeof(BlockMXFP4) == 17);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

}  // namespace osprey::quant
