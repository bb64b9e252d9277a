#include "core/fp16.h"
#include "quant/quant.h"

namespace osprey::quant {
namespace {

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(x[i]);
}

void quantize(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(src[i]);
}

// Activations are rounded to fp16 too, as llama.cpp does, then multiplied in fp32.
float dot(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const uint16_t*>(a);
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += fp16_to_fp32(x[i + k]) * fp16_to_fp32(y[i + k]);
  float sum = 0;
  for (; i < n; ++i) sum += fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]);
  for (float v : acc) sum += v;
  return sum;
}

}  // namespace

extern const QuantOps kF16Ops = {DType::kF16, 1, 2, dequantize, quantize, DType::kF16, dot};

}  // namespace osprey::quant
