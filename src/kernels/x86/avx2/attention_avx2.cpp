// AVX2 + F16C attention of one query head over fp16 keys and values. Same
// contract as the reference in ref/ops_ref.cpp: the query and the
// probabilities are rounded to fp16, products are summed in fp32.
#include <immintrin.h>

#include <cmath>

#include "kernels/ops.h"
#include "kernels/x86/avx2/avx2_util.h"

namespace osprey::kernels::avx2 {

namespace {

inline __m256 load_half8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline float round_to_half(float x) { return _cvtsh_ss(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)); }

}  // namespace

void attend_head(const float* q, const KvView& kv, int64_t n_kv, int head_dim, float scale, float* scores,
                 float* out) {
  // Heads are multiples of 8 wide in every model osprey runs; others use the reference.
  if (head_dim % 8 != 0 || head_dim > 256) {
    kernels::attend_head(q, kv, n_kv, head_dim, scale, scores, out);
    return;
  }
  const int nv = head_dim / 8;
  __m256 qh[32];
  for (int j = 0; j < nv; ++j)
    qh[j] = _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(q + 8 * j), _MM_FROUND_TO_NEAREST_INT));
  float max = -INFINITY;
  for_each_kv_run(kv, n_kv, [&](int64_t t0, int64_t count, const uint16_t* k, const uint16_t*) {
    for (int64_t i = 0; i < count; ++i) {
      const uint16_t* kt = k + i * kv.stride;
      __m256 acc = _mm256_setzero_ps();
      for (int j = 0; j < nv; ++j) acc = _mm256_fmadd_ps(qh[j], load_half8(kt + 8 * j), acc);
      scores[t0 + i] = hsum(acc) * scale;
      max = std::fmax(max, scores[t0 + i]);
    }
  });
  double sum = 0;
  for (int64_t t = 0; t < n_kv; ++t) sum += (scores[t] = std::exp(scores[t] - max));
  const float inv = static_cast<float>(1.0 / sum);
  __m256 o[32];
  for (int j = 0; j < nv; ++j) o[j] = _mm256_setzero_ps();
  for_each_kv_run(kv, n_kv, [&](int64_t t0, int64_t count, const uint16_t*, const uint16_t* v) {
    for (int64_t i = 0; i < count; ++i) {
      const uint16_t* vt = v + i * kv.stride;
      const __m256 p = _mm256_set1_ps(round_to_half(scores[t0 + i] * inv));
      for (int j = 0; j < nv; ++j) o[j] = _mm256_fmadd_ps(p, load_half8(vt + 8 * j), o[j]);
    }
  });
  for (int j = 0; j < nv; ++j) _mm256_storeu_ps(out + 8 * j, o[j]);
}

}  // namespace osprey::kernels::avx2
