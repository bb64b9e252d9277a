// AVX2 encoders for the q8 planar activations (kernels/planar_act.h). They
// write exactly the bytes the scalar encoders write (tested), since a
// prompt's first pass and later passes may encode the same row on different
// paths and batching is promised to be bit-exact.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/planar_act.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/avx2_util.h"
#include "quant/blocks.h"

namespace osprey::kernels::avx2 {

using namespace osprey::quant;

namespace {

// std::round (halves away from zero) exactly: the fraction v - trunc(v) is
// exact in float, so comparing it with 0.5 decides as std::round does.
inline __m256 round_half_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
  const __m256 abs_frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
  const __m256 step = _mm256_and_ps(_mm256_cmp_ps(abs_frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), _mm256_set1_ps(1.0f));
  return _mm256_add_ps(t, _mm256_or_ps(step, sign));
}

}  // namespace

void encode_planar_q8(const float* x, void* act, int64_t n) {
  auto* q = static_cast<int8_t*>(act);
  auto* d = reinterpret_cast<float*>(q + n);
  auto* sum = reinterpret_cast<int32_t*>(d + n / kQK);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(xb + 8 * j);
      // Operand order makes NaN behave as the scalar fmax/fmin do: ignored here,
      // mapped to 127 below.
      amax = _mm256_max_ps(_mm256_and_ps(v[j], abs_mask), amax);
    }
    const float dv = hmax(amax) / 127.0f;
    const float id = dv != 0 ? 1.0f / dv : 0.0f;
    __m256i qi[4];
    __m256i s = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      __m256 r = round_half_away(_mm256_mul_ps(v[j], _mm256_set1_ps(id)));
      r = _mm256_max_ps(_mm256_min_ps(r, _mm256_set1_ps(127.0f)), _mm256_set1_ps(-127.0f));
      qi[j] = _mm256_cvtps_epi32(r);
      s = _mm256_add_epi32(s, qi[j]);
    }
    // int32 -> int8 in order: packs interleave 128-bit lanes, the permute undoes it.
    const __m256i w01 = _mm256_packs_epi32(qi[0], qi[1]);
    const __m256i w23 = _mm256_packs_epi32(qi[2], qi[3]);
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * kQK), bytes);
    d[b] = fp16_to_fp32(fp32_to_fp16(dv));
    sum[b] = hsum_i32(s);
  }
}

void encode_planar_q8_paired(const float* x, void* act, int64_t n) {
  encode_planar_q8(x, act, n);
  pair_act_halves(static_cast<int8_t*>(act), n);
}

// Q8_K's encoding (quant/q8_k.cpp) per 256 values: the scale comes from the
// first value of largest magnitude, sign kept, and the levels round half to
// even, which is what cvtps_epi32 does in the default rounding mode. The
// scalar encoder ran a prompt's ffn_down product about half as slow again
// on Q4_K as on Q4_0 (whose encoder is the one above).
void encode_planar_q8k(const float* x, void* act, int64_t n) {
  auto* q = static_cast<int8_t*>(act);
  auto* d = reinterpret_cast<float*>(q + n);
  auto* sum32 = reinterpret_cast<int32_t*>(d + n / kQK_K);
  auto* sum16 = reinterpret_cast<int16_t*>(sum32 + n / 32);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  constexpr int kVecs = kQK_K / 8;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    int8_t* qb = q + b * kQK_K;
    // The largest magnitude; NaN is passed over (max_ps returns its second
    // operand then), as the scalar comparison passes it over.
    __m256 amax = _mm256_setzero_ps();
    for (int j = 0; j < kVecs; ++j) amax = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(xb + 8 * j), abs_mask), amax);
    const float top = hmax(amax);
    if (top == 0) {  // all zeros (or NaN): the scalar encoder's empty block
      std::memset(qb, 0, kQK_K);
      d[b] = 0;
      for (int g = 0; g < kQK_K / 32; ++g) sum32[b * 8 + g] = 0;
      for (int g = 0; g < kQK_K / 16; ++g) sum16[b * 16 + g] = 0;
      continue;
    }
    // The first value whose magnitude is the largest, with its sign.
    float max = 0;
    const __m256 topv = _mm256_set1_ps(top);
    for (int j = 0; j < kVecs; ++j) {
      const __m256 v = _mm256_loadu_ps(xb + 8 * j);
      const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(v, abs_mask), topv, _CMP_EQ_OQ));
      if (hit) {
        max = xb[8 * j + __builtin_ctz(static_cast<unsigned>(hit))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m256 is = _mm256_set1_ps(iscale), hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int j = 0; j < kVecs; j += 4) {
      __m256i qi[4];
      for (int k = 0; k < 4; ++k) {
        // min_ps(v, hi) returns hi for NaN, as fmin(hi, v) does.
        const __m256 r = _mm256_max_ps(_mm256_min_ps(_mm256_mul_ps(_mm256_loadu_ps(xb + 8 * (j + k)), is), hi), lo);
        qi[k] = _mm256_cvtps_epi32(r);
      }
      const __m256i w01 = _mm256_packs_epi32(qi[0], qi[1]);
      const __m256i w23 = _mm256_packs_epi32(qi[2], qi[3]);
      const __m256i bytes =
          _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qb + 8 * j), bytes);
      // Sums of each 8 bytes made unsigned (q + 128), less 8 * 128 each.
      const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(bytes, flip), _mm256_setzero_si256());
      alignas(32) int64_t s8[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(s8), sad);
      const int g16 = j / 2;  // the 16-value group this vector starts
      const int s0 = static_cast<int>(s8[0] + s8[1]) - 16 * 128, s1 = static_cast<int>(s8[2] + s8[3]) - 16 * 128;
      sum16[b * 16 + g16] = static_cast<int16_t>(s0);
      sum16[b * 16 + g16 + 1] = static_cast<int16_t>(s1);
      sum32[b * 8 + g16 / 2] = s0 + s1;
    }
    d[b] = 1.0f / iscale;
  }
}

}  // namespace osprey::kernels::avx2
