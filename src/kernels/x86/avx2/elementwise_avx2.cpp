// AVX2 + FMA elementwise kernels. Built with -mavx2 -mfma; only called after
// the CPU was probed. They agree with the scalar definitions in ref/ to a
// few float ulps (tests/kernels/ops_test.cpp).
#include <immintrin.h>

#include <algorithm>

#include "core/fp16.h"

#include "kernels/ops.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/avx2_util.h"

namespace osprey::kernels::avx2 {

void silu_mul(float* out, const float* gate, const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));  // 0 past -87, where silu(g) = g
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
  }
  if (i < n) kernels::silu_mul(out + i, gate + i, up + i, n - i);
}

void gelu_mul(float* out, const float* gate, const float* up, int64_t n) {
  // g * sigmoid(2u), u = sqrt(2/pi) * (g + 0.044715 g^3), as the reference.
  const __m256 one = _mm256_set1_ps(1.0f), c1 = _mm256_set1_ps(1.5957691216057308f), c3 = _mm256_set1_ps(0.044715f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 u2 = _mm256_mul_ps(c1, _mm256_fmadd_ps(_mm256_mul_ps(c3, g), _mm256_mul_ps(g, g), g));
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), u2));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
  }
  if (i < n) kernels::gelu_mul(out + i, gate + i, up + i, n - i);
}

void swiglu_oai_mul(float* out, const float* gate, const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f), limit = _mm256_set1_ps(7.0f), alpha = _mm256_set1_ps(-1.702f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_min_ps(_mm256_loadu_ps(gate + i), limit);
    const __m256 u = _mm256_max_ps(_mm256_min_ps(_mm256_loadu_ps(up + i), limit), _mm256_sub_ps(_mm256_setzero_ps(), limit));
    const __m256 e = exp8(_mm256_mul_ps(alpha, g));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_add_ps(u, one)));
  }
  if (i < n) kernels::swiglu_oai_mul(out + i, gate + i, up + i, n - i);
}

namespace {

// 0.5 x erfc(-x / sqrt 2) for 8 values, with erfc from Numerical Recipes'
// Chebyshev fit (relative error under 1.2e-7 everywhere, so the far negative
// tail keeps its precision too): erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2).
inline __m256 gelu_erf8(__m256 x) {
  const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  const __m256 z = _mm256_andnot_ps(sign, _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));  // |x| / sqrt 2
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(half, z, one));
  __m256 p = _mm256_set1_ps(0.17087277f);
  for (const float c : {-0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f, 0.09678418f,
                        0.37409196f, 1.00002368f, -1.26551223f})
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c));
  const __m256 e = _mm256_mul_ps(t, exp8(_mm256_fnmadd_ps(z, z, p)));  // erfc(|x| / sqrt 2)
  // x >= 0: x - x erfc / 2; x < 0: x erfc / 2.
  const __m256 h = _mm256_mul_ps(_mm256_mul_ps(half, x), e);
  return _mm256_blendv_ps(_mm256_sub_ps(x, h), h, x);
}

}  // namespace

void gelu_erf(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu_erf8(_mm256_loadu_ps(x + i)));
  if (i < n) {
    // The tail through the same arithmetic, so that a value's result does
    // not depend on where a thread's range cut the row.
    alignas(32) float tail[8] = {};
    std::copy(x + i, x + n, tail);
    _mm256_store_ps(tail, gelu_erf8(_mm256_load_ps(tail)));
    std::copy(tail, tail + (n - i), x + i);
  }
}

void low_rank_update(float* y, const float* x, const float* a, const float* bt, int64_t r, int64_t n_in,
                     int64_t n_out, float s, float* mid) {
  for (int64_t j = 0; j < r; ++j) mid[j] = s * dot_f32(a + j * n_in, x, n_in);
  int64_t o = 0;
  for (; o + 8 <= n_out; o += 8) {
    __m256 acc = _mm256_loadu_ps(y + o);
    for (int64_t j = 0; j < r; ++j) acc = _mm256_fmadd_ps(_mm256_set1_ps(mid[j]), _mm256_loadu_ps(bt + j * n_out + o), acc);
    _mm256_storeu_ps(y + o, acc);
  }
  for (; o < n_out; ++o) {
    float v = y[o];
    for (int64_t j = 0; j < r; ++j) v += mid[j] * bt[j * n_out + o];
    y[o] = v;
  }
}

void f16_row(const float* x, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) out[i] = fp32_to_fp16(x[i]);
}

}  // namespace osprey::kernels::avx2
