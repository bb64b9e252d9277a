#include <cmath>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/k_quant_common.h"
#include "quant/k_unpack.h"
#include "quant/quant.h"
#include "quant/quant_util.h"

namespace osprey::quant {
namespace {


void dequantize(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ6_K*>(src);
  int8_t q[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    unpack_q6_k(b[i], q);
    for (int j = 0; j < kQK_K; ++j) dst[i * kQK_K + j] = d * b[i].scales[j / 16] * q[j];
  }
}

// weights: one per element of src (an importance matrix's column weights), or null.
void quantize_weighted(const float* src, void* dst, int64_t n, const float* weights) {
  auto* b = static_cast<BlockQ6_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    const float* w = weights != nullptr ? weights + i * kQK_K : nullptr;
    float sub_scale[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int s = 0; s < 16; ++s) {
      sub_scale[s] = k_fit_symmetric_scale(x + 16 * s, 16, -32, 31, w ? w + 16 * s : nullptr);
      if (std::fabs(sub_scale[s]) > max_abs_scale) {
        max_abs_scale = std::fabs(sub_scale[s]);
        max_scale = sub_scale[s];
      }
    }
    int8_t levels[kQK_K];
    if (max_abs_scale == 0) {
      b[i] = BlockQ6_K{};
      for (int j = 0; j < kQK_K; ++j) levels[j] = 0;
    } else {
      const float iscale = -128.0f / max_scale;
      const float d = fp16_to_fp32(fp32_to_fp16(1.0f / iscale));
      b[i].d = fp32_to_fp16(d);
      for (int s = 0; s < 16; ++s) {
        b[i].scales[s] = static_cast<int8_t>(round_clamp(iscale * sub_scale[s], -128, 127));
        const float ds = d * b[i].scales[s];
        for (int j = 0; j < 16; ++j)
          levels[16 * s + j] = static_cast<int8_t>(ds != 0 ? round_clamp(x[16 * s + j] / ds, -32, 31) : 0);
      }
    }
    for (int h = 0; h < 2; ++h) {
      uint8_t* ql = b[i].ql + 64 * h;
      uint8_t* qh = b[i].qh + 32 * h;
      const int8_t* L = levels + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[l] + 32, q2 = L[l + 32] + 32, q3 = L[l + 64] + 32, q4 = L[l + 96] + 32;
        ql[l] = static_cast<uint8_t>((q1 & 0x0F) | ((q3 & 0x0F) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 0x0F) | ((q4 & 0x0F) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

void quantize(const float* src, void* dst, int64_t n) { quantize_weighted(src, dst, n, nullptr); }

float dot(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  int8_t q[kQK_K];
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    unpack_q6_k(x[i], q);
    int32_t sumi = 0;
    for (int s = 0; s < 16; ++s) {
      int32_t t = 0;
      for (int j = 0; j < 16; ++j) t += q[16 * s + j] * y[i].qs[16 * s + j];
      sumi += x[i].scales[s] * t;
    }
    sum += fp16_to_fp32(x[i].d) * y[i].d * sumi;
  }
  return sum;
}

}  // namespace

extern const QuantOps kQ6_KOps = {DType::kQ6_K, kQK_K, sizeof(BlockQ6_K), dequantize, quantize, DType::kQ8_K, dot,
                                   quantize_weighted};

}  // namespace osprey::quant
