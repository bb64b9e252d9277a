#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/k_quant_common.h"
#include "quant/k_unpack.h"
#include "quant/quant.h"

namespace osprey::quant {
namespace {


void dequantize(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ5_K*>(src);
  uint8_t q[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    unpack_q5_k(b[i], q);
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      k_scale_min(j, b[i].scales, sc, m);
      for (int l = 0; l < 32; ++l) dst[i * kQK_K + 32 * j + l] = d * sc * q[32 * j + l] - dmin * m;
    }
  }
}

// weights: one per element of src (an importance matrix's column weights), or null.
void quantize_weighted(const float* src, void* dst, int64_t n, const float* weights) {
  auto* b = static_cast<BlockQ5_K*>(dst);
  uint8_t q[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    float d, dmin;
    k_quantize_superblock(src + i * kQK_K, 32, b[i].scales, q, d, dmin, weights ? weights + i * kQK_K : nullptr);
    b[i].d = fp32_to_fp16(d);
    b[i].dmin = fp32_to_fp16(dmin);
    for (int l = 0; l < 32; ++l) b[i].qh[l] = 0;
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        const int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
        b[i].qs[32 * c + l] = static_cast<uint8_t>((lo & 0x0F) | ((hi & 0x0F) << 4));
        b[i].qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
  }
}

void quantize(const float* src, void* dst, int64_t n) { quantize_weighted(src, dst, n, nullptr); }

float dot(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ5_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  uint8_t q[kQK_K];
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    unpack_q5_k(x[i], q);
    int32_t sumi, summ;
    k_dot_levels(q, x[i].scales, y[i], sumi, summ);
    sum += y[i].d * (fp16_to_fp32(x[i].d) * sumi - fp16_to_fp32(x[i].dmin) * summ);
  }
  return sum;
}

}  // namespace

extern const QuantOps kQ5_KOps = {DType::kQ5_K, kQK_K, sizeof(BlockQ5_K), dequantize, quantize, DType::kQ8_K, dot,
                                   quantize_weighted};

}  // namespace osprey::quant
