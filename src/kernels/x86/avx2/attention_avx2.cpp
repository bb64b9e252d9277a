// AVX2 + F16C attention of one query head over fp16 keys and values. Same
// contract as the reference in ref/ops_ref.cpp: the query and the
// probabilities are rounded to fp16, products are summed in fp32.
#include <immintrin.h>

#include <algorithm>
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

void attend_group(const float* const* q, int n_q, const int64_t* n_kv, const KvView& kv, int head_dim, float scale,
                  float* scores, float* const* out) {
  if (head_dim % 8 != 0 || head_dim > 256 || n_q > kMaxGroupQueries) {
    for (int i = 0; i < n_q; ++i) avx2::attend_head(q[i], kv, n_kv[i], head_dim, scale, scores, out[i]);
    return;
  }
  // Every step below does, per query, exactly what attend_head does, in the
  // same order; only the loops are turned so that a K or V row, converted
  // once, serves all queries.
  const int nv = head_dim / 8;
  int64_t max_kv = 0;
  for (int i = 0; i < n_q; ++i) max_kv = std::max(max_kv, n_kv[i]);
  alignas(32) float qh[kMaxGroupQueries][256];
  alignas(32) float o[kMaxGroupQueries][256];
  float max[kMaxGroupQueries], inv[kMaxGroupQueries];
  for (int i = 0; i < n_q; ++i) {
    max[i] = -INFINITY;
    for (int j = 0; j < nv; ++j)
      _mm256_store_ps(qh[i] + 8 * j,
                      _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(q[i] + 8 * j), _MM_FROUND_TO_NEAREST_INT)));
  }
  __m256 row[32];
  for_each_kv_run(kv, max_kv, [&](int64_t t0, int64_t count, const uint16_t* k, const uint16_t*) {
    for (int64_t r = 0; r < count; ++r) {
      const int64_t t = t0 + r;
      for (int j = 0; j < nv; ++j) row[j] = load_half8(k + r * kv.stride + 8 * j);
      for (int i = 0; i < n_q; ++i) {
        if (t >= n_kv[i]) continue;
        __m256 acc = _mm256_setzero_ps();
        for (int j = 0; j < nv; ++j) acc = _mm256_fmadd_ps(_mm256_load_ps(qh[i] + 8 * j), row[j], acc);
        float& s = scores[i * max_kv + t];
        s = hsum(acc) * scale;
        max[i] = std::fmax(max[i], s);
      }
    }
  });
  for (int i = 0; i < n_q; ++i) {
    float* si = scores + i * max_kv;
    double sum = 0;
    for (int64_t t = 0; t < n_kv[i]; ++t) sum += (si[t] = std::exp(si[t] - max[i]));
    inv[i] = static_cast<float>(1.0 / sum);
    for (int j = 0; j < nv; ++j) _mm256_store_ps(o[i] + 8 * j, _mm256_setzero_ps());
  }
  for_each_kv_run(kv, max_kv, [&](int64_t t0, int64_t count, const uint16_t*, const uint16_t* v) {
    for (int64_t r = 0; r < count; ++r) {
      const int64_t t = t0 + r;
      for (int j = 0; j < nv; ++j) row[j] = load_half8(v + r * kv.stride + 8 * j);
      for (int i = 0; i < n_q; ++i) {
        if (t >= n_kv[i]) continue;
        const __m256 p = _mm256_set1_ps(round_to_half(scores[i * max_kv + t] * inv[i]));
        for (int j = 0; j < nv; ++j)
          _mm256_store_ps(o[i] + 8 * j, _mm256_fmadd_ps(p, row[j], _mm256_load_ps(o[i] + 8 * j)));
      }
    }
  });
  for (int i = 0; i < n_q; ++i)
    for (int j = 0; j < nv; ++j) _mm256_storeu_ps(out[i] + 8 * j, _mm256_load_ps(o[i] + 8 * j));
}

}  // namespace osprey::kernels::avx2
