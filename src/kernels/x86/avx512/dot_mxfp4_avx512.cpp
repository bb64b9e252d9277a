// AVX-512 (VNNI) dot products for MXFP4 weights against Q8_0 activations:
// two blocks per step. The codes are looked up in the doubled E2M1 table
// (integers, -12..12), and the signed products summed with vpdpbusd after
// moving each level's sign onto the activation. Built with the AVX-512
// flags; only called after the CPU was probed.
#include <immintrin.h>

#include <cmath>

#include "core/fp16.h"
#include "kernels/dispatch.h"
#include "quant/blocks.h"

namespace osprey::kernels::avx512 {

namespace {

using quant::BlockMXFP4;
using quant::BlockQ8_0;
using quant::kQK;

float dot_mxfp4(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockMXFP4*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const __m512i table =
      _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::kMxfp4Levels)));
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc = _mm512_setzero_ps();
  const int64_t nb = n / kQK;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    // Bytes 0-15 low nibbles of block i, 16-31 its high nibbles; 32-63 block i+1.
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs));
    const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i + 1].qs));
    const __m512i q = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_set_m128i(q0, q0)), _mm256_set_m128i(q1, q1), 1);
    // Lanes 0 and 2 (of four 128-bit lanes) keep the low nibbles, 1 and 3 the high ones.
    const __m512i shifted = _mm512_srli_epi16(q, 4);
    const __m512i codes = _mm512_and_si512(_mm512_mask_blend_epi64(0xCC, q, shifted), low4);
    const __m512i levels = _mm512_shuffle_epi8(table, codes);
    const __m512i qy = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i + 1].qs)), 1);
    const __mmask64 negative = _mm512_movepi8_mask(levels);
    const __m512i signed_y = _mm512_mask_sub_epi8(qy, negative, _mm512_setzero_si512(), qy);
    const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(levels), signed_y);
    const float d0 = std::ldexp(1.0f, static_cast<int>(x[i].e) - 128) * fp16_to_fp32(y[i].d);
    const float d1 = std::ldexp(1.0f, static_cast<int>(x[i + 1].e) - 128) * fp16_to_fp32(y[i + 1].d);
    const __m512 d = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(d0), _mm512_set1_ps(d1));
    acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sums), acc);
  }
  float sum = _mm512_reduce_add_ps(acc);
  for (; i < nb; ++i) {  // an odd last block
    int32_t s = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      s += quant::kMxfp4Levels[x[i].qs[j] & 0x0F] * y[i].qs[j];
      s += quant::kMxfp4Levels[x[i].qs[j] >> 4] * y[i].qs[j + kQK / 2];
    }
    sum += static_cast<float>(s) * std::ldexp(1.0f, static_cast<int>(x[i].e) - 128) * fp16_to_fp32(y[i].d);
  }
  return sum;
}

}  // namespace

DotFn dot_for(DType type) { return type == DType::kMXFP4 ? dot_mxfp4 : nullptr; }

}  // namespace osprey::kernels::avx512
