// AVX-512 (VNNI) dot products for MXFP4 weights against Q8_0 activations:
// two blocks per step. The codes are looked up in the doubled E2M1 table
// (integers, -12..12), and the signed products summed with vpdpbusd after
// moving each level's sign onto the activation. Built with the AVX-512
// flags; only called after the CPU was probed.
//
// GCC 12 reports the _mm512_undefined_* operands inside its own intrinsics
// (broadcasts, inserts, conversions) as uninitialized; they are fully
// overwritten. The pragmas precede the header, where those inline functions
// are defined.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cmath>

#include "core/fp16.h"
#include "kernels/dispatch.h"
#include "kernels/x86/avx512/avx512.h"
#include "quant/blocks.h"

namespace osprey::kernels::avx512 {

namespace {

using quant::BlockMXFP4;
using quant::BlockQ8_0;
using quant::kQK;

// The signed levels of blocks i and i+1, as |level| bytes and a mask of the negative ones.
inline void decode_pair(const BlockMXFP4* x, int64_t i, __m512i& magnitude, __mmask64& negative) {
  const __m512i table =
      _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::kMxfp4Levels)));
  const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs));
  const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i + 1].qs));
  const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(q0, q0)), _mm256_set_m128i(q1, q1), 1);
  const __m512i codes = _mm512_and_si512(_mm512_mask_blend_epi64(0xCC, q, _mm512_srli_epi16(q, 4)), _mm512_set1_epi8(0x0F));
  const __m512i levels = _mm512_shuffle_epi8(table, codes);
  negative = _mm512_movepi8_mask(levels);
  magnitude = _mm512_abs_epi8(levels);
}

// One pair of blocks against one token's activations, accumulated into acc.
inline __m512 pair_step(__m512 acc, __m512i magnitude, __mmask64 negative, float sx0, float sx1, const BlockQ8_0* y,
                        int64_t i) {
  const __m512i qy = _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs))),
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i + 1].qs)), 1);
  const __m512i signed_y = _mm512_mask_sub_epi8(qy, negative, _mm512_setzero_si512(), qy);
  const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), magnitude, signed_y);
  const __m512 d = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(sx0 * fp16_to_fp32(y[i].d)),
                                        _mm512_set1_ps(sx1 * fp16_to_fp32(y[i + 1].d)));
  return _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sums), acc);
}

// An odd last block, as the scalar reference computes it.
inline float tail_block(const BlockMXFP4& x, const BlockQ8_0& y) {
  int32_t s = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    s += quant::kMxfp4Levels[x.qs[j] & 0x0F] * y.qs[j];
    s += quant::kMxfp4Levels[x.qs[j] >> 4] * y.qs[j + kQK / 2];
  }
  return static_cast<float>(s) * std::ldexp(1.0f, static_cast<int>(x.e) - 128) * fp16_to_fp32(y.d);
}

inline float block_scale(const BlockMXFP4& x) { return std::ldexp(1.0f, static_cast<int>(x.e) - 128); }

float dot_mxfp4(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockMXFP4*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  __m512 acc = _mm512_setzero_ps();
  const int64_t nb = n / kQK;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    __m512i magnitude;
    __mmask64 negative;
    decode_pair(x, i, magnitude, negative);
    acc = pair_step(acc, magnitude, negative, block_scale(x[i]), block_scale(x[i + 1]), y, i);
  }
  float sum = _mm512_reduce_add_ps(acc);
  if (i < nb) sum += tail_block(x[i], y[i]);
  return sum;
}

// Prompts: each pair of weight blocks is decoded once for up to kTileTokens
// tokens. Every token's arithmetic is dot_mxfp4's, in the same order, so a
// token gets the same bits in a tile as alone.
constexpr int kTileTokens = 8;

void tile_mxfp4(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const uint8_t* act, int64_t act_stride, int n_tok,
                int64_t n, float* out, int64_t out_stride) {
  const int64_t nb = n / kQK;
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto* x = reinterpret_cast<const BlockMXFP4*>(w + r * row_bytes);
    __m512 acc[kTileTokens];
    for (int t = 0; t < n_tok; ++t) acc[t] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
      __m512i magnitude;
      __mmask64 negative;
      decode_pair(x, i, magnitude, negative);
      const float sx0 = block_scale(x[i]), sx1 = block_scale(x[i + 1]);
      for (int t = 0; t < n_tok; ++t)
        acc[t] = pair_step(acc[t], magnitude, negative, sx0, sx1,
                           reinterpret_cast<const BlockQ8_0*>(act + t * act_stride), i);
    }
    for (int t = 0; t < n_tok; ++t) {
      float sum = _mm512_reduce_add_ps(acc[t]);
      if (i < nb) sum += tail_block(x[i], reinterpret_cast<const BlockQ8_0*>(act + t * act_stride)[i]);
      out[t * out_stride + r] = sum;
    }
  }
}

}  // namespace

DotFn dot_for(DType type) { return type == DType::kMXFP4 ? dot_mxfp4 : nullptr; }

bool mxfp4_row_kernel(RowKernel& k) {
  k.act_ops = quant_ops(DType::kQ8_0);
  k.dot = dot_mxfp4;
  k.dot_tile = tile_mxfp4;
  k.tile_tokens = kTileTokens;
  return true;
}

}  // namespace osprey::kernels::avx512
