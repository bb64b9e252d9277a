// IEEE half and bfloat16 conversions, bit-exact and independent of the host
// compiler's _Float16 support. fp16_to_fp32 goes through a 64K-entry table
// because dequantization calls it for every block.
#pragma once

#include <cstdint>
#include <cstring>

namespace osprey {

float fp16_to_fp32_slow(uint16_t h);
uint16_t fp32_to_fp16(float f);  // round to nearest even, saturates to inf

extern const float* const g_fp16_table;  // [65536]

inline float fp16_to_fp32(uint16_t h) { return g_fp16_table[h]; }

inline float bf16_to_fp32(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t fp32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((bits >> 16) | 64);  // quiet NaN
  bits += 0x7fff + ((bits >> 16) & 1);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

}  // namespace osprey
