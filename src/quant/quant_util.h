// Small numeric helpers shared by the format files.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace osprey::quant {

// Rounds and clamps to [lo, hi]. NaN maps to lo rather than being undefined.
// Rounds half to even, as nearbyint does in the default rounding mode, but
// without a library call in code built for baseline x86-64 (no SSE4.1
// roundss): adding 1.5 * 2^23 to a float of magnitude below 2^22 leaves its
// nearest integer in the low mantissa bits.
inline int round_clamp(float v, int lo, int hi) {
  v = std::fmax(static_cast<float>(lo), std::fmin(static_cast<float>(hi), v));
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

// Truncating conversion for the legacy formats, whose encoders add 0.5 first.
inline int trunc_clamp(float v, int lo, int hi) {
  v = std::fmax(static_cast<float>(lo), std::fmin(static_cast<float>(hi), v));
  return static_cast<int>(v);
}

// The element with the largest magnitude, keeping its sign. The symmetric
// formats map it to the most negative level so that level is not wasted.
inline float signed_absmax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    const float a = std::fabs(x[j]);
    if (a > amax) {
      amax = a;
      max = x[j];
    }
  }
  return max;
}

// Symmetric 8-bit encoding of n values: returns the scale d = amax / 127 and
// writes round(x / d). Shared by the Q8_0 and Q8_1 encoders.
inline float quantize_block_q8(const float* x, int8_t* qs, int n) {
  float amax = 0;
  for (int j = 0; j < n; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < n; ++j) qs[j] = static_cast<int8_t>(round_clamp(std::round(x[j] * id), -127, 127));
  return d;
}

// The 5-bit levels of a Q5_0/Q5_1 block: the low nibbles in qs (element j
// low, element j+16 high) and the fifth bit of element i at bit i of qh.
inline void unpack_q5(const uint8_t qs[16], const uint8_t qh_bytes[4], int q[32]) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  for (int j = 0; j < 16; ++j) {
    q[j] = (qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
    q[j + 16] = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
  }
}

}  // namespace osprey::quant
