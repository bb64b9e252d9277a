// AVX2 + F16C flash-style attention over fp16 keys and values, on the
// shared tile driver (kernels/attend_tiled.h): tiles of 8 positions, and per
// query one tile costs eight dot products reduced together, one vectorised
// exp and an online-softmax update. The query is rounded to fp16 to meet
// the fp16 keys; probabilities and sums stay fp32.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/attend_tiled.h"
#include "kernels/ops.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/avx2_util.h"

namespace osprey::kernels::avx2 {

namespace {

inline __m256 load_half8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// The eight sums of a[0..7]'s lanes, as one vector: lane j = sum of a[j].
inline __m256 reduce8(const __m256 a[8]) {
  const __m256 h01 = _mm256_hadd_ps(a[0], a[1]), h23 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 h45 = _mm256_hadd_ps(a[4], a[5]), h67 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 h0123 = _mm256_hadd_ps(h01, h23), h4567 = _mm256_hadd_ps(h45, h67);
  return _mm256_add_ps(_mm256_permute2f128_ps(h0123, h4567, 0x20), _mm256_permute2f128_ps(h0123, h4567, 0x31));
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// cap * tanh(x / cap), through e^(-2|x|/cap) so that the exponent stays <= 0.
inline __m256 softcap8(__m256 x, float cap) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256 e = exp8(_mm256_mul_ps(a, _mm256_set1_ps(-2.0f / cap)));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
  return _mm256_mul_ps(_mm256_or_ps(t, sign), _mm256_set1_ps(cap));
}

// The level's part of attend_tiled: one query at a time over a tile of 8.
struct Avx2Attention {
  static constexpr int kTile = 8, kWidth = 8;

  static void fallback(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                       const AttendParams& p, float* scores, float* const* out) {
    kernels::attend_group(q, n_q, spans, kv, head_dim, p, scores, out);
  }
  static void widen_f16(const uint16_t* src, float* dst, int n) {
    for (int j = 0; j < n; j += 8) _mm256_store_ps(dst + j, load_half8(src + j));
  }
  static void scale_row(const float* src, float f, float* dst, int n) {
    const __m256 vf = _mm256_set1_ps(f);
    for (int j = 0; j < n; j += 8) _mm256_storeu_ps(dst + j, _mm256_mul_ps(_mm256_load_ps(src + j), vf));
  }

  class Group {
   public:
    // The queries are rounded to fp16 to meet the fp16 keys.
    Group(const float* const* q, int n_q, int head_dim) : n_q_(n_q), nv_(head_dim / 8) {
      for (int i = 0; i < n_q; ++i) {
        m_[i] = -INFINITY;
        l_[i] = 0;
        for (int j = 0; j < nv_; ++j) {
          _mm256_store_ps(qh_[i] + 8 * j,
                          _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(q[i] + 8 * j), _MM_FROUND_TO_NEAREST_INT)));
          _mm256_store_ps(o_[i] + 8 * j, _mm256_setzero_ps());
        }
      }
    }
    float max(int i) const { return m_[i]; }
    float sum(int i) const { return l_[i]; }
    const float* acc(int i) const { return o_[i]; }

    void tile(int64_t t0, const KvSpan* spans, const AttendParams& p, const float (*kf)[kMaxTiledHeadDim],
              const float (*vf)[kMaxTiledHeadDim]) {
      const __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
      for (int i = 0; i < n_q_; ++i) {
        // This query's rows of the tile: [lo, hi).
        const int lo = static_cast<int>(std::clamp<int64_t>(spans[i].begin - t0, 0, kTile));
        const int hi = static_cast<int>(std::clamp<int64_t>(spans[i].end - t0, 0, kTile));
        if (lo >= hi) continue;
        __m256 acc[kTile];
        for (int r = 0; r < kTile; ++r) acc[r] = _mm256_setzero_ps();
        for (int j = 0; j < nv_; ++j) {
          const __m256 qv = _mm256_load_ps(qh_[i] + 8 * j);
          for (int r = 0; r < kTile; ++r) acc[r] = _mm256_fmadd_ps(qv, _mm256_load_ps(kf[r] + 8 * j), acc[r]);
        }
        __m256 s = _mm256_mul_ps(reduce8(acc), _mm256_set1_ps(p.scale));
        if (p.softcap > 0) s = softcap8(s, p.softcap);
        const __m256 live = _mm256_and_ps(_mm256_cmp_ps(lane, _mm256_set1_ps(static_cast<float>(hi)), _CMP_LT_OQ),
                                          _mm256_cmp_ps(lane, _mm256_set1_ps(static_cast<float>(lo)), _CMP_GE_OQ));
        s = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), s, live);
        const float m_new = std::fmax(m_[i], hmax(s));
        // exp(m_old - m_new) rescales what came before (0 on the first tile).
        const __m256 alpha = exp8(_mm256_set1_ps(m_[i] - m_new));
        const __m256 pr = exp8(_mm256_sub_ps(s, _mm256_set1_ps(m_new)));
        m_[i] = m_new;
        l_[i] = l_[i] * _mm256_cvtss_f32(alpha) + hsum(pr);
        if (lo == 0 && hi == kTile) {  // the common case: the eight probabilities stay in registers
          __m256 pb[kTile];
          const __m256 lo4 = _mm256_permute2f128_ps(pr, pr, 0x00), hi4 = _mm256_permute2f128_ps(pr, pr, 0x11);
          pb[0] = _mm256_shuffle_ps(lo4, lo4, 0x00), pb[1] = _mm256_shuffle_ps(lo4, lo4, 0x55);
          pb[2] = _mm256_shuffle_ps(lo4, lo4, 0xAA), pb[3] = _mm256_shuffle_ps(lo4, lo4, 0xFF);
          pb[4] = _mm256_shuffle_ps(hi4, hi4, 0x00), pb[5] = _mm256_shuffle_ps(hi4, hi4, 0x55);
          pb[6] = _mm256_shuffle_ps(hi4, hi4, 0xAA), pb[7] = _mm256_shuffle_ps(hi4, hi4, 0xFF);
          for (int j = 0; j < nv_; ++j) {
            __m256 a = _mm256_mul_ps(_mm256_load_ps(o_[i] + 8 * j), alpha);
            for (int r = 0; r < kTile; ++r) a = _mm256_fmadd_ps(pb[r], _mm256_load_ps(vf[r] + 8 * j), a);
            _mm256_store_ps(o_[i] + 8 * j, a);
          }
        } else {
          alignas(32) float pv[kTile];
          _mm256_store_ps(pv, pr);
          for (int j = 0; j < nv_; ++j) {
            __m256 a = _mm256_mul_ps(_mm256_load_ps(o_[i] + 8 * j), alpha);
            for (int r = lo; r < hi; ++r) a = _mm256_fmadd_ps(_mm256_set1_ps(pv[r]), _mm256_load_ps(vf[r] + 8 * j), a);
            _mm256_store_ps(o_[i] + 8 * j, a);
          }
        }
      }
    }

   private:
    int n_q_, nv_;
    alignas(32) float qh_[kMaxGroupQueries][kMaxTiledHeadDim];
    alignas(32) float o_[kMaxGroupQueries][kMaxTiledHeadDim];
    float m_[kMaxGroupQueries], l_[kMaxGroupQueries];
  };
};

}  // namespace

void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  attend_tiled<Avx2Attention>(q, n_q, spans, kv, head_dim, p, scores, out);
}

void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out) {
  avx2::attend_group(&q, 1, &span, kv, head_dim, p, scores, &out);
}

}  // namespace osprey::kernels::avx2
