// AVX2 encoders for the q8 planar activations (kernels/planar_act.h). They
// write exactly the bytes the scalar encoders write (tested), since a
// prompt's first pass and later passes may encode the same row on different
// paths and batching is promised to be bit-exact.
#include <immintrin.h>

#include <cmath>

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
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float dv = _mm_cvtss_f32(m) / 127.0f;
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

}  // namespace osprey::kernels::avx2
