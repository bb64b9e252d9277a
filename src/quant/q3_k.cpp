#include <cmath>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/k_quant_common.h"
#include "quant/quant.h"
#include "quant/quant_util.h"

namespace osprey::quant {
namespace {

// Element e's third bit is bit hmask_bit(e) of hmask[e % 32].
inline int hmask_bit(int e) { return 4 * (e / 128) + (e % 128) / 32; }

// Element e's level in -4..3: the low two bits, less 4 unless its hmask bit is set.
inline int level(const BlockQ3_K& b, int e) {
  const int bit = (b.hmask[e % 32] >> hmask_bit(e)) & 1;
  return k_low2(b.qs, e) - (bit ? 0 : 4);
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ3_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    for (int e = 0; e < kQK_K; ++e) dst[i * kQK_K + e] = d * q3k_scale(b[i].scales, e / 16) * level(b[i], e);
  }
}

// weights: one per element of src (an importance matrix's column weights), or null.
void quantize_weighted(const float* src, void* dst, int64_t n, const float* weights) {
  auto* b = static_cast<BlockQ3_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    const float* w = weights != nullptr ? weights + i * kQK_K : nullptr;
    float sub_scale[16], max_scale = 0;
    for (int s = 0; s < 16; ++s) {
      sub_scale[s] = k_fit_symmetric_scale(x + 16 * s, 16, -4, 3, w ? w + 16 * s : nullptr);
      if (std::fabs(sub_scale[s]) > std::fabs(max_scale)) max_scale = sub_scale[s];
    }
    b[i] = BlockQ3_K{};
    // The largest sub-block scale becomes -32, the most negative 6-bit code.
    const float d = max_scale != 0 ? fp16_to_fp32(fp32_to_fp16(max_scale / -32.0f)) : 0.0f;
    b[i].d = fp32_to_fp16(d);
    for (int s = 0; s < 16; ++s) {
      const int sc = d != 0 ? round_clamp(sub_scale[s] / d, -32, 31) : 0;
      q3k_set_scale(b[i].scales, s, sc);
      const float step = d * sc;
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * s + l;
        const int q = (step != 0 ? round_clamp(x[e] / step, -4, 3) : 0) + 4;  // 0..7
        k_set_low2(b[i].qs, e, q & 3);
        b[i].hmask[e % 32] |= static_cast<uint8_t>((q >> 2) << hmask_bit(e));
      }
    }
  }
}

void quantize(const float* src, void* dst, int64_t n) { quantize_weighted(src, dst, n, nullptr); }

float dot(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ3_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int32_t sumi = 0;
    for (int s = 0; s < 16; ++s) {
      int32_t t = 0;
      for (int l = 0; l < 16; ++l) t += level(x[i], 16 * s + l) * y[i].qs[16 * s + l];
      sumi += q3k_scale(x[i].scales, s) * t;
    }
    sum += fp16_to_fp32(x[i].d) * y[i].d * sumi;
  }
  return sum;
}

}  // namespace

extern const QuantOps kQ3_KOps = {DType::kQ3_K, kQK_K, sizeof(BlockQ3_K), dequantize, quantize, DType::kQ8_K, dot,
                                   quantize_weighted};

}  // namespace osprey::quant
