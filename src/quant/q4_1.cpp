#include <algorithm>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/quant.h"
#include "quant/quant_util.h"

namespace osprey::quant {
namespace {

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
    float* y = dst + i * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = (b[i].qs[j] & 0x0F) * d + m;
      y[j + kQK / 2] = (b[i].qs[j] >> 4) * d + m;
    }
  }
}

void quantize(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    const float min = *std::min_element(x, x + kQK), max = *std::max_element(x, x + kQK);
    const float d = (max - min) / 15.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    b[i].m = fp32_to_fp16(min);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = trunc_clamp((x[j] - min) * id + 0.5f, 0, 15);
      const int q1 = trunc_clamp((x[j + kQK / 2] - min) * id + 0.5f, 0, 15);
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// With a = da * qa: sum (d*q + m) * a = d*da*sum(q*qa) + m * (da*sum(qa)), the
// last factor precomputed as the activation block's `s`.
float dot(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ4_1*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int32_t s = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      s += (x[i].qs[j] & 0x0F) * y[i].qs[j];
      s += (x[i].qs[j] >> 4) * y[i].qs[j + kQK / 2];
    }
    sum += s * fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d) + fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
  }
  return sum;
}

}  // namespace

extern const QuantOps kQ4_1Ops = {DType::kQ4_1, kQK, sizeof(BlockQ4_1), dequantize, quantize, DType::kQ8_1, dot};

}  // namespace osprey::quant
