#include <cstring>

#include "quant/quant.h"

namespace osprey::quant {
namespace {

void dequantize(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }
void quantize(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }

float dot(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const float*>(w);
  const auto* y = static_cast<const float*>(a);
  // Eight partial sums break the dependency chain and let the compiler vectorise.
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += x[i + k] * y[i + k];
  float sum = 0;
  for (; i < n; ++i) sum += x[i] * y[i];
  for (float v : acc) sum += v;
  return sum;
}

}  // namespace

extern const QuantOps kF32Ops = {DType::kF32, 1, 4, dequantize, quantize, DType::kF32, dot};

}  // namespace osprey::quant
