#include <algorithm>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/k_quant_common.h"
#include "quant/quant.h"
#include "quant/quant_util.h"

namespace osprey::quant {
namespace {

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ2_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    for (int e = 0; e < kQK_K; ++e) {
      const int sc = b[i].scales[e / 16];
      dst[i * kQK_K + e] = d * (sc & 15) * k_low2(b[i].qs, e) - dmin * (sc >> 4);
    }
  }
}

// weights: one per element of src (an importance matrix's column weights), or null.
void quantize_weighted(const float* src, void* dst, int64_t n, const float* weights) {
  auto* b = static_cast<BlockQ2_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    const float* w = weights != nullptr ? weights + i * kQK_K : nullptr;
    float sub_scale[16], sub_min[16];
    float max_scale = 0, max_min = 0;
    for (int s = 0; s < 16; ++s) {
      sub_scale[s] = k_fit_scale_min(x + 16 * s, 16, 4, sub_min[s], w ? w + 16 * s : nullptr);
      max_scale = std::max(max_scale, sub_scale[s]);
      max_min = std::max(max_min, sub_min[s]);
    }
    // Encode against the fp16-rounded super-block factors, as the decoder sees them.
    const float d = fp16_to_fp32(fp32_to_fp16(max_scale / 15.0f));
    const float dmin = fp16_to_fp32(fp32_to_fp16(max_min / 15.0f));
    b[i] = BlockQ2_K{};
    b[i].d = fp32_to_fp16(d);
    b[i].dmin = fp32_to_fp16(dmin);
    for (int s = 0; s < 16; ++s) {
      const int ls = d > 0 ? round_clamp(sub_scale[s] / d, 0, 15) : 0;
      const int lm = dmin > 0 ? round_clamp(sub_min[s] / dmin, 0, 15) : 0;
      b[i].scales[s] = static_cast<uint8_t>(ls | (lm << 4));
      const float step = d * ls, m = dmin * lm;
      for (int l = 0; l < 16; ++l)
        k_set_low2(b[i].qs, 16 * s + l, step > 0 ? round_clamp((x[16 * s + l] + m) / step, 0, 3) : 0);
    }
  }
}

void quantize(const float* src, void* dst, int64_t n) { quantize_weighted(src, dst, n, nullptr); }

float dot(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ2_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int32_t sumi = 0, summ = 0;
    for (int s = 0; s < 16; ++s) {
      int32_t t = 0;
      for (int l = 0; l < 16; ++l) t += k_low2(x[i].qs, 16 * s + l) * y[i].qs[16 * s + l];
      sumi += (x[i].scales[s] & 15) * t;
      summ += (x[i].scales[s] >> 4) * y[i].bsums[s];
    }
    sum += y[i].d * (fp16_to_fp32(x[i].d) * sumi - fp16_to_fp32(x[i].dmin) * summ);
  }
  return sum;
}

}  // namespace

extern const QuantOps kQ2_KOps = {DType::kQ2_K, kQK_K, sizeof(BlockQ2_K), dequantize, quantize, DType::kQ8_K, dot,
                                   quantize_weighted};

}  // namespace osprey::quant
