// MXFP4: the OCP microscaling format gpt-oss ships its expert weights in.
// Each block of 32 values is one E8M0 exponent and 32 four-bit E2M1 codes
// (sign, two exponent bits, one mantissa bit: 0, 0.5, 1, 1.5, 2, 3, 4, 6).
// Dot products run against Q8_0 activations, as for the other 32-blocks.
#include <cmath>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/quant.h"

namespace osprey::quant {
namespace {

// 2^(e - 128): half the block's scale, to go with the doubled levels.
float half_scale(uint8_t e) { return std::ldexp(1.0f, static_cast<int>(e) - 128); }

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockMXFP4*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = half_scale(b[i].e);
    float* y = dst + i * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = kMxfp4Levels[b[i].qs[j] & 0x0F] * d;
      y[j + kQK / 2] = kMxfp4Levels[b[i].qs[j] >> 4] * d;
    }
  }
}

// The code whose level is nearest to v (in units of the half scale): the
// magnitude's place among the midpoints of 0, 1, 2, 3, 4, 6, 8, 12 (ties to
// the smaller), and the sign bit.
int nearest_code(float v) {
  static constexpr float kMidpoints[7] = {0.5f, 1.5f, 2.5f, 3.5f, 5.0f, 7.0f, 10.0f};
  const float a = std::fabs(v);
  int code = 0;
  while (code < 7 && a > kMidpoints[code]) ++code;
  return code == 0 ? 0 : (v < 0 ? code | 8 : code);
}

void quantize(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockMXFP4*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    // The exponent puts the largest magnitude in [4, 8) of the block's unit,
    // where E2M1 has its top codes (4 and 6).
    int e = amax > 0 ? static_cast<int>(std::floor(std::log2(amax))) - 2 + 127 : 0;
    e = e < 0 ? 0 : e > 254 ? 254 : e;
    b[i].e = static_cast<uint8_t>(e);
    const float id = 1.0f / half_scale(b[i].e);
    for (int j = 0; j < kQK / 2; ++j)
      b[i].qs[j] = static_cast<uint8_t>(nearest_code(x[j] * id) | (nearest_code(x[j + kQK / 2] * id) << 4));
  }
}

float dot(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockMXFP4*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int32_t s = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      s += kMxfp4Levels[x[i].qs[j] & 0x0F] * y[i].qs[j];
      s += kMxfp4Levels[x[i].qs[j] >> 4] * y[i].qs[j + kQK / 2];
    }
    sum += static_cast<float>(s) * half_scale(x[i].e) * fp16_to_fp32(y[i].d);
  }
  return sum;
}

}  // namespace

extern const QuantOps kMXFP4Ops = {DType::kMXFP4, kQK, sizeof(BlockMXFP4), dequantize, quantize, DType::kQ8_0, dot};

}  // namespace osprey::quant
