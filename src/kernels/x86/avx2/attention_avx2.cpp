// AVX2 + F16C flash-style attention over fp16 keys and values, on the
// shared tile driver (kernels/attend_tiled.h), with tiles of 8 positions.
// The queries sit in lanes, as at the AVX-512 level
// (x86/avx512/attention_avx512.cpp): a block of 8 queries meets a tile as 8
// registers of scores, one per position, built by broadcasting each key
// element against the transposed queries. The online softmax is then
// elementwise across those registers, with no reduction across lanes, and
// each loaded value vector serves several queries. The queries are rounded
// to fp16 to meet the fp16 keys; probabilities and sums stay fp32.
//
// Until this layout the level kept one query's 8 scores in a register: per
// query and tile, eight dot products reduced across lanes, a max and two
// exps across lanes, a chain that the next query waited on. One thread of
// `osprey_kernel_bench --benchmark_filter=attention/avx2` on Zen 3: see
// the README's measurements.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/attend_tiled.h"
#include "kernels/ops.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/avx2_util.h"

namespace osprey::kernels::avx2 {

namespace {

constexpr int kTile = 8, kLanes = 8;
constexpr int kMaxBlocks = kMaxGroupQueries / kLanes;

inline __m256 load_half8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
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

// Scores of one block of queries against one tile: s[r] lane i = sum over d
// of K[r][d] * q_i[d], in order of d. The keys' elements are broadcast from
// their fp32 rows; the block's queries are transposed (qt[d] lane i = q_i[d]).
inline void tile_scores(const float (*kf)[kMaxTiledHeadDim], const float (*qt)[kLanes], int head_dim, __m256 s[kTile]) {
  for (int r = 0; r < kTile; ++r) s[r] = _mm256_setzero_ps();
  for (int d = 0; d < head_dim; ++d) {
    const __m256 qd = _mm256_load_ps(qt[d]);
    for (int r = 0; r < kTile; ++r) s[r] = _mm256_fmadd_ps(_mm256_set1_ps(kf[r][d]), qd, s[r]);
  }
}

// o_i = o_i * alpha_i + sum over the tile's positions r of p[r][i] * V[r],
// for NQ queries at once (each loaded V vector serves them all) over NJ
// vectors of 8 dimensions starting at dimension 8 * j0. Positions past a
// query's span have p = 0 and finite (or zeroed) V, so every query adds all 8
// and gets the same bits however many positions the tile holds for it.
template <int NQ, int NJ>
void tile_values(float* const* o, const float* const* p, const float* alpha, const float (*vf)[kMaxTiledHeadDim], int j0) {
  __m256 acc[NQ][NJ];
  for (int i = 0; i < NQ; ++i)
    for (int j = 0; j < NJ; ++j)
      acc[i][j] = _mm256_mul_ps(_mm256_load_ps(o[i] + 8 * (j0 + j)), _mm256_set1_ps(alpha[i]));
  for (int r = 0; r < kTile; ++r) {
    __m256 v[NJ];
    for (int j = 0; j < NJ; ++j) v[j] = _mm256_load_ps(vf[r] + 8 * (j0 + j));
    for (int i = 0; i < NQ; ++i)
      for (int j = 0; j < NJ; ++j) acc[i][j] = _mm256_fmadd_ps(_mm256_set1_ps(p[i][r * kLanes]), v[j], acc[i][j]);
  }
  for (int i = 0; i < NQ; ++i)
    for (int j = 0; j < NJ; ++j) _mm256_store_ps(o[i] + 8 * (j0 + j), acc[i][j]);
}

// Four queries by two vectors: eight sums, two values and a broadcast in the
// sixteen registers.
constexpr int kValueQueries = 4, kValueVectors = 2;

template <int NQ = kValueQueries, int NJ = kValueVectors>
void tile_values_n(int nq, int nj, float* const* o, const float* const* p, const float* alpha,
                   const float (*vf)[kMaxTiledHeadDim], int j0) {
  if constexpr (NQ > 1) {
    if (nq < NQ) return tile_values_n<NQ - 1, NJ>(nq, nj, o, p, alpha, vf, j0);
  }
  if constexpr (NJ > 1) {
    if (nj < NJ) return tile_values_n<NQ, NJ - 1>(nq, nj, o, p, alpha, vf, j0);
  }
  tile_values<NQ, NJ>(o, p, alpha, vf, j0);
}

// The level's part of attend_tiled: blocks of 8 queries, one per lane, over
// tiles of 8 positions.
struct Avx2Attention {
  static constexpr int kTile = avx2::kTile, kWidth = 8;

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
    Group(const float* const* q, int n_q, int head_dim)
        : n_q_(n_q), nv_(head_dim / 8), head_dim_(head_dim), n_blocks_((n_q + kLanes - 1) / kLanes) {
      for (int b = 0; b < n_blocks_; ++b)
        for (int d = 0; d < head_dim; ++d)
          for (int lane = 0; lane < kLanes; ++lane) {
            const int i = b * kLanes + lane;
            qt_[b][d][lane] = i < n_q ? _cvtsh_ss(_cvtss_sh(q[i][d], _MM_FROUND_TO_NEAREST_INT)) : 0.0f;
          }
      for (int b = 0; b < n_blocks_; ++b)
        for (int lane = 0; lane < kLanes; ++lane) {
          m_[b][lane] = b * kLanes + lane < n_q ? -INFINITY : 0.0f;
          l_[b][lane] = 0;
        }
      for (int i = 0; i < n_q; ++i)
        for (int j = 0; j < nv_; ++j) _mm256_store_ps(o_[i] + 8 * j, _mm256_setzero_ps());
    }
    float max(int i) const { return m_[i / kLanes][i % kLanes]; }
    float sum(int i) const { return l_[i / kLanes][i % kLanes]; }
    const float* acc(int i) const { return o_[i]; }

    void tile(int64_t t0, const KvSpan* spans, const AttendParams& p, const float (*kf)[kMaxTiledHeadDim],
              const float (*vf)[kMaxTiledHeadDim]) {
      const __m256 vscale = _mm256_set1_ps(p.scale), neg_inf = _mm256_set1_ps(-INFINITY);
      // Scores and the online softmax, a block of 8 queries at a time.
      for (int b = 0; b < n_blocks_; ++b) {
        alignas(32) int32_t lo[kLanes], hi[kLanes];  // the rows of this tile each lane sees: [lo, hi)
        for (int lane = 0; lane < kLanes; ++lane) {
          const int i = b * kLanes + lane;
          lo[lane] = i < n_q_ ? static_cast<int32_t>(std::clamp<int64_t>(spans[i].begin - t0, 0, kTile)) : 0;
          hi[lane] = i < n_q_ ? static_cast<int32_t>(std::clamp<int64_t>(spans[i].end - t0, 0, kTile)) : 0;
        }
        const __m256i vlo = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
        const __m256i vhi = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
        if (_mm256_movemask_epi8(_mm256_cmpgt_epi32(vhi, vlo)) == 0) continue;  // no query of the block sees this tile
        __m256 s[kTile];
        tile_scores(kf, qt_[b], head_dim_, s);
        __m256 m_new = _mm256_load_ps(m_[b]);
        for (int r = 0; r < kTile; ++r) {
          const __m256i vr = _mm256_set1_epi32(r);
          // Lane sees row r: lo <= r < hi.
          const __m256i live = _mm256_andnot_si256(_mm256_cmpgt_epi32(vlo, vr), _mm256_cmpgt_epi32(vhi, vr));
          __m256 sr = _mm256_mul_ps(s[r], vscale);
          if (p.softcap > 0) sr = softcap8(sr, p.softcap);
          s[r] = _mm256_blendv_ps(neg_inf, sr, _mm256_castsi256_ps(live));
          m_new = _mm256_max_ps(m_new, s[r]);
        }
        // A lane that has seen nothing yet keeps max -inf: its probabilities
        // are 0 and its (empty) sums are left as they are.
        const __m256 seen = _mm256_cmp_ps(m_new, neg_inf, _CMP_NEQ_OQ);
        // e^(m_old - m_new) rescales what came before (0 on a query's first tile).
        const __m256 a =
            _mm256_blendv_ps(_mm256_set1_ps(1.0f), exp8(_mm256_sub_ps(_mm256_load_ps(m_[b]), m_new)), seen);
        __m256 sum = _mm256_setzero_ps();
        for (int r = 0; r < kTile; ++r) {
          const __m256 pr = _mm256_and_ps(seen, exp8(_mm256_sub_ps(s[r], m_new)));
          _mm256_store_ps(prob_[b][r], pr);
          sum = _mm256_add_ps(sum, pr);
        }
        _mm256_store_ps(l_[b], _mm256_fmadd_ps(_mm256_load_ps(l_[b]), a, sum));
        _mm256_store_ps(alpha_[b], a);
        _mm256_store_ps(m_[b], m_new);
      }
      // P.V for the queries that still see positions, four at a time.
      float* os[kMaxGroupQueries];
      const float* ps[kMaxGroupQueries];
      float as[kMaxGroupQueries];
      int n_live = 0;
      for (int i = 0; i < n_q_; ++i) {
        if (spans[i].end <= t0 || spans[i].begin >= t0 + kTile || spans[i].begin >= spans[i].end) continue;
        os[n_live] = o_[i];
        ps[n_live] = &prob_[i / kLanes][0][i % kLanes];
        as[n_live] = alpha_[i / kLanes][i % kLanes];
        ++n_live;
      }
      for (int i = 0; i < n_live; i += kValueQueries)
        for (int j = 0; j < nv_; j += kValueVectors)
          tile_values_n(std::min(kValueQueries, n_live - i), std::min(kValueVectors, nv_ - j), os + i, ps + i, as + i,
                        vf, j);
    }

   private:
    int n_q_, nv_, head_dim_, n_blocks_;
    alignas(32) float qt_[kMaxBlocks][kMaxTiledHeadDim][kLanes];  // queries rounded to fp16, transposed
    alignas(32) float o_[kMaxGroupQueries][kMaxTiledHeadDim];
    alignas(32) float prob_[kMaxBlocks][kTile][kLanes];  // a tile's probabilities, by position and query
    // Per lane: the running max (0 for lanes with no query, so that they
    // stay finite), the running sum of e^(s - max), and the last tile's
    // rescaling.
    alignas(32) float m_[kMaxBlocks][kLanes], l_[kMaxBlocks][kLanes], alpha_[kMaxBlocks][kLanes];
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
