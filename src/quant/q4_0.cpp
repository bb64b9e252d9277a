#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/quant.h"
#include "quant/quant_util.h"

namespace osprey::quant {
namespace {

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    float* y = dst + i * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = ((b[i].qs[j] & 0x0F) - 8) * d;
      y[j + kQK / 2] = ((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void quantize(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    const float d = signed_absmax(x, kQK) / -8.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = trunc_clamp(x[j] * id + 8.5f, 0, 15);
      const int q1 = trunc_clamp(x[j + kQK / 2] * id + 8.5f, 0, 15);
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

float dot(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int32_t s = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      s += ((x[i].qs[j] & 0x0F) - 8) * y[i].qs[j];
      s += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + kQK / 2];
    }
    sum += s * fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d);
  }
  return sum;
}

}  // namespace

extern const QuantOps kQ4_0Ops = {DType::kQ4_0, kQK, sizeof(BlockQ4_0), dequantize, quantize, DType::kQ8_0, dot};

}  // namespace osprey::quant
