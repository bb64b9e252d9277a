// Q8_1 is an activation format only: Q8_0 plus the scaled block sum that
// Q4_1/Q5_1 need for their offset term.
#include <cmath>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/quant.h"
#include "quant/quant_util.h"

namespace osprey::quant {
namespace {

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ8_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < kQK; ++j) dst[i * kQK + j] = b[i].qs[j] * d;
  }
}

void quantize(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = quantize_block_q8(src + i * kQK, b[i].qs, kQK);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) sum += b[i].qs[j];
    b[i].d = fp32_to_fp16(d);
    b[i].s = fp32_to_fp16(sum * d);
  }
}

}  // namespace

extern const QuantOps kQ8_1Ops = {DType::kQ8_1, kQK, sizeof(BlockQ8_1), dequantize, quantize, DType::kQ8_1, nullptr};

}  // namespace osprey::quant
