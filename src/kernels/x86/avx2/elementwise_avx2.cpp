// AVX2 + FMA elementwise kernels. Built with -mavx2 -mfma; only called after
// the CPU was probed. They agree with the scalar definitions in ref/ to a
// few float ulps (tests/kernels/ops_test.cpp).
#include <immintrin.h>

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

}  // namespace osprey::kernels::avx2
