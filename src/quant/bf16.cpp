#include "core/fp16.h"
#include "quant/quant.h"

namespace osprey::quant {
namespace {

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(x[i]);
}

void quantize(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(src[i]);
}

float dot(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const uint16_t*>(a);
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += bf16_to_fp32(x[i + k]) * bf16_to_fp32(y[i + k]);
  float sum = 0;
  for (; i < n; ++i) sum += bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]);
  for (float v : acc) sum += v;
  return sum;
}

}  // namespace

extern const QuantOps kBF16Ops = {DType::kBF16, 1, 2, dequantize, quantize, DType::kBF16, dot};

}  // namespace osprey::quant
