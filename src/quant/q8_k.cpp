// Q8_K is an activation format only, paired with the k-quant weights.
#include "quant/blocks.h"
#include "quant/quant.h"
#include "quant/quant_util.h"

namespace osprey::quant {
namespace {

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ8_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i)
    for (int j = 0; j < kQK_K; ++j) dst[i * kQK_K + j] = b[i].d * b[i].qs[j];
}

void quantize(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    const float max = signed_absmax(x, kQK_K);
    if (max == 0) {
      b[i] = BlockQ8_K{};
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j) b[i].qs[j] = static_cast<int8_t>(round_clamp(iscale * x[j], -127, 127));
    for (int g = 0; g < kQK_K / 16; ++g) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += b[i].qs[g * 16 + j];
      b[i].bsums[g] = static_cast<int16_t>(s);
    }
    b[i].d = 1.0f / iscale;
  }
}

}  // namespace

extern const QuantOps kQ8_KOps = {DType::kQ8_K, kQK_K, sizeof(BlockQ8_K), dequantize, quantize, DType::kQ8_K, nullptr};

}  // namespace osprey::quant
