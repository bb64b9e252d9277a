// AVX-512 flash-style attention over fp16 keys and values, on the shared tile
// driver (kernels/attend_tiled.h) with tiles of 16 positions, so that a
// query's 16 scores fill one register and the dot products and the V update
// take half the instructions of the AVX2 level. Built with the AVX-512
// flags; only called after the CPU was probed.
//
// GCC 12 reports the _mm512_undefined_* operands inside its own intrinsics
// (conversions, reductions) as uninitialized; they are fully overwritten. The
// pragmas precede the header, where those inline functions are defined.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/attend_tiled.h"
#include "kernels/ops.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/avx512_util.h"

namespace osprey::kernels::avx512 {

namespace {

constexpr int kTile = 16;

// e^x for x <= 0 as the AVX2 kernel computes it (Cody-Waite reduction and a
// degree-6 polynomial, about 2 ulp); below the smallest normal float, and for
// x = -inf, exactly 0. Kept here rather than shared because inline code
// compiled with these flags must not be linked into the AVX2 kernels.
inline __m512 exp16(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.33654f);  // ln(FLT_MIN)
  const __mmask16 tiny = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f)), lo);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  for (float c : {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f})
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(c));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(static_cast<__mmask16>(~tiny), y, _mm512_castsi512_ps(bits));
}

// cap * tanh(x / cap), through e^(-2|x|/cap) so that the exponent stays <= 0.
inline __m512 softcap16(__m512 x, float cap) {
  const __m512 a = _mm512_abs_ps(x);
  const __m512 e = exp16(_mm512_mul_ps(a, _mm512_set1_ps(-2.0f / cap)));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 t = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN));
  return _mm512_mul_ps(_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), sign)), _mm512_set1_ps(cap));
}

// Queries are processed in blocks of 16, one per lane: a tile's scores are
// 16 registers, one per position, each holding that position's score for
// every query of the block. The softmax is then elementwise across those
// registers (no reduction across lanes), and a lane's arithmetic never
// depends on the lanes beside it.
constexpr int kLanes = 16;
constexpr int kMaxBlocks = kMaxGroupQueries / kLanes;

// Scores of one block against one tile: s[r] lane i = sum over d of
// K[r][d] * q_i[d], in order of d. The keys' elements are broadcast from
// their fp32 rows, the block's queries are transposed (qt[d] lane i = q_i[d]).
inline void tile_scores(const float (*kf)[kMaxTiledHeadDim], const float (*qt)[kLanes], int head_dim, __m512 s[kTile]) {
  for (int r = 0; r < kTile; ++r) s[r] = _mm512_setzero_ps();
  for (int d = 0; d < head_dim; ++d) {
    const __m512 qd = _mm512_load_ps(qt[d]);
    for (int r = 0; r < kTile; ++r) s[r] = _mm512_fmadd_ps(_mm512_set1_ps(kf[r][d]), qd, s[r]);
  }
}

// o_i = o_i * alpha_i + sum over the tile's positions r of p[r][i] * V[r],
// for NQ queries at once (each loaded V vector serves them all) over NJ
// vectors of 16 dimensions starting at dimension 16 * j0. Positions past a
// query's length have p = 0 and finite (or zeroed) V, so every query adds
// all 16 and gets the same bits however many positions the tile holds.
template <int NQ, int NJ>
void tile_values(float* const* o, const float* const* p, const float* alpha, const float* vf, int ldv, int j0) {
  __m512 acc[NQ][NJ];
  for (int i = 0; i < NQ; ++i)
    for (int j = 0; j < NJ; ++j)
      acc[i][j] = _mm512_mul_ps(_mm512_load_ps(o[i] + 16 * (j0 + j)), _mm512_set1_ps(alpha[i]));
  for (int r = 0; r < kTile; ++r) {
    __m512 v[NJ];
    for (int j = 0; j < NJ; ++j) v[j] = _mm512_load_ps(vf + r * ldv + 16 * (j0 + j));
    for (int i = 0; i < NQ; ++i)
      for (int j = 0; j < NJ; ++j) acc[i][j] = _mm512_fmadd_ps(_mm512_set1_ps(p[i][r * kLanes]), v[j], acc[i][j]);
  }
  for (int i = 0; i < NQ; ++i)
    for (int j = 0; j < NJ; ++j) _mm512_store_ps(o[i] + 16 * (j0 + j), acc[i][j]);
}

constexpr int kValueQueries = 4, kValueVectors = 4;

template <int NQ = kValueQueries, int NJ = kValueVectors>
void tile_values_n(int nq, int nj, float* const* o, const float* const* p, const float* alpha, const float* vf, int ldv,
                   int j0) {
  if constexpr (NQ > 1) {
    if (nq < NQ) return tile_values_n<NQ - 1, NJ>(nq, nj, o, p, alpha, vf, ldv, j0);
  }
  if constexpr (NJ > 1) {
    if (nj < NJ) return tile_values_n<NQ, NJ - 1>(nq, nj, o, p, alpha, vf, ldv, j0);
  }
  tile_values<NQ, NJ>(o, p, alpha, vf, ldv, j0);
}

// P.V for the n queries given (their outputs, probabilities by lane, and
// rescalings), four queries and four vectors of V at a time. V rows are ldv
// floats apart.
inline void tile_values_all(int n, int nv, float* const* os, const float* const* ps, const float* as, const float* vf,
                            int ldv) {
  for (int i = 0; i < n; i += kValueQueries)
    for (int j = 0; j < nv; j += kValueVectors)
      tile_values_n(std::min(kValueQueries, n - i), std::min(kValueVectors, nv - j), os + i, ps + i, as + i, vf, ldv, j);
}

// The online softmax of one block of 16 lanes over one tile, given its raw
// scores: lane i sees rows [lo_i, hi_i) of the tile. m, l and alpha are the
// block's running max, running sum and this tile's rescaling; prob[r] gets
// the tile's probabilities. Lanes never mix, so a lane's bits depend on its
// own query alone.
inline void block_softmax(__m512 s[kTile], __m512i vlo, __m512i vhi, const AttendParams& p, float* m, float* l,
                          float* alpha, float (*prob)[kLanes]) {
  const __m512 vscale = _mm512_set1_ps(p.scale);
  __m512 m_new = _mm512_load_ps(m);
  for (int r = 0; r < kTile; ++r) {
    const __m512i vr = _mm512_set1_epi32(r);
    const __mmask16 live = _mm512_cmpgt_epi32_mask(vhi, vr) & _mm512_cmple_epi32_mask(vlo, vr);
    __m512 sr = _mm512_mul_ps(s[r], vscale);
    if (p.softcap > 0) sr = softcap16(sr, p.softcap);
    s[r] = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), live, sr);
    m_new = _mm512_max_ps(m_new, s[r]);
  }
  // A lane that has seen nothing yet keeps max -inf: its probabilities
  // are 0 and its (empty) sums are left as they are.
  const __mmask16 seen = _mm512_cmp_ps_mask(m_new, _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ);
  // e^(m_old - m_new) rescales what came before (0 on a query's first tile).
  const __m512 a = _mm512_mask_blend_ps(seen, _mm512_set1_ps(1.0f), exp16(_mm512_sub_ps(_mm512_load_ps(m), m_new)));
  __m512 sum = _mm512_setzero_ps();
  for (int r = 0; r < kTile; ++r) {
    const __m512 pr = _mm512_maskz_mov_ps(seen, exp16(_mm512_sub_ps(s[r], m_new)));
    _mm512_store_ps(prob[r], pr);
    sum = _mm512_add_ps(sum, pr);
  }
  _mm512_store_ps(l, _mm512_fmadd_ps(_mm512_load_ps(l), a, sum));
  _mm512_store_ps(alpha, a);
  _mm512_store_ps(m, m_new);
}

// A query's value, rounded to fp16 to meet fp16 keys (ops.h).
inline float query_value(float x) { return _cvtsh_ss(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)); }

// Whether a query sees any row of the tile at t0.
inline bool sees_tile(const KvSpan& span, int64_t t0) {
  return span.begin < span.end && span.end > t0 && span.begin < t0 + kTile;
}

// The level's part of attend_tiled: blocks of 16 queries, one per lane,
// over tiles of 16 positions.
struct Avx512Attention {
  static constexpr int kTile = avx512::kTile, kWidth = 16;

  // Heads that are not a multiple of 16 wide take the AVX2 kernel.
  static void fallback(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                       const AttendParams& p, float* scores, float* const* out) {
    avx2::attend_group(q, n_q, spans, kv, head_dim, p, scores, out);
  }
  static void widen_f16(const uint16_t* src, float* dst, int n) {
    for (int j = 0; j < n; j += 16) _mm512_store_ps(dst + j, load_f16x16(src + j));
  }
  static void scale_row(const float* src, float f, float* dst, int n) {
    const __m512 vf = _mm512_set1_ps(f);
    for (int j = 0; j < n; j += 16) _mm512_storeu_ps(dst + j, _mm512_mul_ps(_mm512_load_ps(src + j), vf));
  }

  class Group {
   public:
    Group(const float* const* q, int n_q, int head_dim)
        : n_q_(n_q), nv_(head_dim / 16), head_dim_(head_dim), n_blocks_((n_q + kLanes - 1) / kLanes) {
      for (int b = 0; b < n_blocks_; ++b)
        for (int d = 0; d < head_dim; ++d)
          for (int lane = 0; lane < kLanes; ++lane) {
            const int i = b * kLanes + lane;
            qt_[b][d][lane] = i < n_q ? query_value(q[i][d]) : 0.0f;
          }
      for (int b = 0; b < n_blocks_; ++b)
        for (int lane = 0; lane < kLanes; ++lane) {
          m_[b][lane] = b * kLanes + lane < n_q ? -INFINITY : 0.0f;
          l_[b][lane] = 0;
        }
      for (int i = 0; i < n_q; ++i)
        for (int j = 0; j < nv_; ++j) _mm512_store_ps(o_[i] + 16 * j, _mm512_setzero_ps());
    }
    float max(int i) const { return m_[i / kLanes][i % kLanes]; }
    float sum(int i) const { return l_[i / kLanes][i % kLanes]; }
    const float* acc(int i) const { return o_[i]; }

    void tile(int64_t t0, const KvSpan* spans, const AttendParams& p, const float (*kf)[kMaxTiledHeadDim],
              const float (*vf)[kMaxTiledHeadDim]) {
      // Scores and the online softmax, a block of 16 queries at a time.
      for (int b = 0; b < n_blocks_; ++b) {
        alignas(64) int32_t lo[kLanes], hi[kLanes];  // the rows of this tile each lane sees: [lo, hi)
        for (int lane = 0; lane < kLanes; ++lane) {
          const int i = b * kLanes + lane;
          lo[lane] = i < n_q_ ? static_cast<int32_t>(std::clamp<int64_t>(spans[i].begin - t0, 0, kTile)) : 0;
          hi[lane] = i < n_q_ ? static_cast<int32_t>(std::clamp<int64_t>(spans[i].end - t0, 0, kTile)) : 0;
        }
        const __m512i vlo = _mm512_load_si512(lo), vhi = _mm512_load_si512(hi);
        if (_mm512_cmpgt_epi32_mask(vhi, vlo) == 0) continue;  // no query of the block sees this tile
        __m512 s[kTile];
        tile_scores(kf, qt_[b], head_dim_, s);
        block_softmax(s, vlo, vhi, p, m_[b], l_[b], alpha_[b], prob_[b]);
      }
      // P.V for the queries that still see positions.
      float* os[kMaxGroupQueries];
      const float* ps[kMaxGroupQueries];
      float as[kMaxGroupQueries];
      int n_live = 0;
      for (int i = 0; i < n_q_; ++i) {
        if (!sees_tile(spans[i], t0)) continue;
        os[n_live] = o_[i];
        ps[n_live] = &prob_[i / kLanes][0][i % kLanes];
        as[n_live] = alpha_[i / kLanes][i % kLanes];
        ++n_live;
      }
      tile_values_all(n_live, nv_, os, ps, as, vf[0], kMaxTiledHeadDim);
    }

   private:
    int n_q_, nv_, head_dim_, n_blocks_;
    alignas(64) float qt_[kMaxBlocks][kMaxTiledHeadDim][kLanes];  // queries rounded to fp16, transposed
    alignas(64) float o_[kMaxGroupQueries][kMaxTiledHeadDim];
    alignas(64) float prob_[kMaxBlocks][kTile][kLanes];  // a tile's probabilities, by position and query
    // Per lane: the running max (0 for lanes with no query, so that they
    // stay finite), the running sum of e^(s - max), and the last tile's
    // rescaling.
    alignas(64) float m_[kMaxBlocks][kLanes], l_[kMaxBlocks][kLanes], alpha_[kMaxBlocks][kLanes];
  };
};

// Several KV heads in one block of lanes (attend_heads): query j of head h
// takes lane j * H + h, so a vector that broadcasts H floats, head 0's to
// head H-1's value at one (row, dimension), meets every lane with its own
// head's key. A lane's arithmetic is the one Group gives the same query: its
// scores are the same chain of FMAs over d, its softmax is block_softmax,
// its values come from its own head's rows.

// H floats from p, repeated across the 16 lanes.
template <int H>
inline __m512 broadcast_heads(const float* p) {
  if constexpr (H == 2) {
    double pair;
    std::memcpy(&pair, p, sizeof pair);
    return _mm512_castpd_ps(_mm512_set1_pd(pair));
  } else if constexpr (H == 4) {
    return _mm512_broadcast_f32x4(_mm_load_ps(p));
  } else if constexpr (H == 8) {
    return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_load_ps(p))));
  } else {
    static_assert(H == 16);
    return _mm512_load_ps(p);
  }
}

// H rows of 16 values (head h's dimensions d0..d0+15 in rows[h]) stored so
// that (dimension d0 + e, head h) lands at out[e * H + h]: log2(H) rounds of
// interleaving row i with row i + H/2.
template <int H>
inline void interleave_heads(__m512 (&rows)[H], float* out) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int step = 1; step < H; step *= 2) {
    __m512 next[H];
    for (int i = 0; i < H / 2; ++i) {
      next[2 * i] = _mm512_permutex2var_ps(rows[i], lo, rows[i + H / 2]);
      next[2 * i + 1] = _mm512_permutex2var_ps(rows[i], hi, rows[i + H / 2]);
    }
    for (int i = 0; i < H; ++i) rows[i] = next[i];
  }
  for (int i = 0; i < H; ++i) _mm512_store_ps(out + 16 * i, rows[i]);
}

// The widest row of H heads the interleaved tile holds.
constexpr int kMaxHeadsWidth = 1024;

// H heads' queries, per_head of them each (H * per_head <= 16), head-major.
template <int H>
void attend_heads_block(const float* const* q, int per_head, const KvSpan* spans, const KvView& kv, int head_dim,
                        const AttendParams& p, float* const* out) {
  const int n_q = H * per_head, nv = head_dim / 16, width = H * head_dim;
  auto lane_of = [&](int i) { return (i % per_head) * H + i / per_head; };
  alignas(64) float qt[kMaxTiledHeadDim][kLanes];
  alignas(64) float m[kLanes], l[kLanes], alpha[kLanes], prob[kTile][kLanes];
  alignas(64) float o[kLanes][kMaxTiledHeadDim];
  for (int d = 0; d < head_dim; ++d) _mm512_store_ps(qt[d], _mm512_setzero_ps());
  for (int lane = 0; lane < kLanes; ++lane) m[lane] = 0.0f, l[lane] = 0.0f;  // lanes with no query stay finite
  for (int i = 0; i < n_q; ++i) {
    const int lane = lane_of(i);
    for (int d = 0; d < head_dim; ++d) qt[d][lane] = query_value(q[i][d]);
    m[lane] = -INFINITY;
    for (int j = 0; j < nv; ++j) _mm512_store_ps(o[i] + 16 * j, _mm512_setzero_ps());
  }
  int64_t first = INT64_MAX, last = 0;  // the positions any query sees
  for (int i = 0; i < n_q; ++i)
    if (spans[i].begin < spans[i].end) first = std::min(first, spans[i].begin), last = std::max(last, spans[i].end);
  int64_t k_off[H], v_off[H];  // where each head's part of a row begins
  for (int h = 0; h < H; ++h)
    k_off[h] = kv_row_bytes(kv.k_type, h * head_dim), v_off[h] = kv_row_bytes(kv.v_type, h * head_dim);
  // The tile: keys interleaved across heads (row r: (d, h) at d * H + h),
  // values per head (head h's row r at (h * kTile + r) * head_dim).
  alignas(64) float kf[kTile * kMaxHeadsWidth], vf[kTile * kMaxHeadsWidth];
  alignas(64) float key[H][kMaxTiledHeadDim];  // one row's keys, head by head, before interleaving
  const int64_t k_bytes = kv_row_bytes(kv.k_type, int64_t{H} * head_dim), v_bytes = kv_row_bytes(kv.v_type, int64_t{H} * head_dim);
  for (int64_t t0 = first < last ? first / kTile * kTile : last; t0 < last; t0 += kTile) {
    // The next tile's rows are requested now, so that they arrive while this
    // one is computed: in batched decode each sequence's rows come from
    // memory, not cache. (Tried in a scratch build on a Zen 5, Qwen3-0.6B,
    // 8 sequences at depth 1024: attention took 58-62 ms a step without it
    // and 49-51 with it; two and four tiles ahead were no better.)
    for (int64_t t = t0 + kTile, e = std::min(t0 + 2 * kTile, last); t < e; ++t) {
      const int64_t row = kv_storage_row(kv, t);
      const char* k_row = reinterpret_cast<const char*>(kv.k + row * kv.k_stride);
      const char* v_row = reinterpret_cast<const char*>(kv.v + row * kv.v_stride);
      for (int64_t b = 0; b < k_bytes; b += 64) _mm_prefetch(k_row + b, _MM_HINT_T0);
      for (int64_t b = 0; b < v_bytes; b += 64) _mm_prefetch(v_row + b, _MM_HINT_T0);
    }
    for (int r = 0; r < kTile; ++r) {
      float* krow = kf + r * width;
      if (t0 + r >= first && t0 + r < last) {
        const int64_t row = kv_storage_row(kv, t0 + r);
        for (int h = 0; h < H; ++h) {
          load_kv_row<Avx512Attention>(kv.k_type, kv.k + row * kv.k_stride + k_off[h], key[h], head_dim);
          load_kv_row<Avx512Attention>(kv.v_type, kv.v + row * kv.v_stride + v_off[h],
                                       vf + (h * kTile + r) * head_dim, head_dim);
        }
        for (int d0 = 0; d0 < head_dim; d0 += 16) {
          __m512 rows[H];
          for (int h = 0; h < H; ++h) rows[h] = _mm512_load_ps(key[h] + d0);
          interleave_heads<H>(rows, krow + d0 * H);
        }
      } else {
        // Rows outside [first, last) may not be stored at all; they are
        // zeros that no query weighs (as in attend_tiled).
        std::memset(krow, 0, sizeof(float) * static_cast<size_t>(width));
        for (int h = 0; h < H; ++h)
          std::memset(vf + (h * kTile + r) * head_dim, 0, sizeof(float) * static_cast<size_t>(head_dim));
      }
    }
    alignas(64) int32_t lo[kLanes] = {}, hi[kLanes] = {};
    for (int i = 0; i < n_q; ++i) {
      lo[lane_of(i)] = static_cast<int32_t>(std::clamp<int64_t>(spans[i].begin - t0, 0, kTile));
      hi[lane_of(i)] = static_cast<int32_t>(std::clamp<int64_t>(spans[i].end - t0, 0, kTile));
    }
    const __m512i vlo = _mm512_load_si512(lo), vhi = _mm512_load_si512(hi);
    if (_mm512_cmpgt_epi32_mask(vhi, vlo) == 0) continue;  // no query sees this tile
    __m512 s[kTile];
    for (int r = 0; r < kTile; ++r) s[r] = _mm512_setzero_ps();
    for (int d = 0; d < head_dim; ++d) {
      const __m512 qd = _mm512_load_ps(qt[d]);
      for (int r = 0; r < kTile; ++r) s[r] = _mm512_fmadd_ps(broadcast_heads<H>(kf + r * width + d * H), qd, s[r]);
    }
    block_softmax(s, vlo, vhi, p, m, l, alpha, prob);
    // P.V, head by head, for the queries that see this tile.
    for (int h = 0; h < H; ++h) {
      float* os[kLanes];
      const float* ps[kLanes];
      float as[kLanes];
      int n_live = 0;
      for (int i = h * per_head; i < (h + 1) * per_head; ++i) {
        if (!sees_tile(spans[i], t0)) continue;
        os[n_live] = o[i];
        ps[n_live] = &prob[0][lane_of(i)];
        as[n_live] = alpha[lane_of(i)];
        ++n_live;
      }
      tile_values_all(n_live, nv, os, ps, as, vf + h * kTile * head_dim, head_dim);
    }
  }
  for (int i = 0; i < n_q; ++i)
    finish_query<Avx512Attention>(m[lane_of(i)], l[lane_of(i)], o[i], p.sinks != nullptr ? p.sinks + i : nullptr, out[i],
                                  head_dim);
}

}  // namespace

void attend_heads(const float* const* q, int n_q, int n_heads, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  static_assert(kLanes == kAttendLanes);
  const int per_head = n_heads > 0 ? n_q / n_heads : 0;
  for (int h = 0; h < n_heads;) {
    // As many heads as fill the lanes (a power of two, for the broadcast).
    int take = 1;
    if (head_dim % 16 == 0 && head_dim <= kMaxTiledHeadDim)
      while (take * 2 <= n_heads - h && take * 2 * per_head <= kLanes && take * 2 * head_dim <= kMaxHeadsWidth) take *= 2;
    KvView at = kv;
    at.k += kv_row_bytes(kv.k_type, int64_t{h} * head_dim);
    at.v += kv_row_bytes(kv.v_type, int64_t{h} * head_dim);
    AttendParams ph = p;
    if (p.sinks != nullptr) ph.sinks = p.sinks + h * per_head;
    const int i = h * per_head;
    switch (take) {
      case 16: attend_heads_block<16>(q + i, per_head, spans + i, at, head_dim, ph, out + i); break;
      case 8: attend_heads_block<8>(q + i, per_head, spans + i, at, head_dim, ph, out + i); break;
      case 4: attend_heads_block<4>(q + i, per_head, spans + i, at, head_dim, ph, out + i); break;
      case 2: attend_heads_block<2>(q + i, per_head, spans + i, at, head_dim, ph, out + i); break;
      default: avx512::attend_group(q + i, per_head, spans + i, at, head_dim, ph, scores, out + i);
    }
    h += take;
  }
}

void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  attend_tiled<Avx512Attention>(q, n_q, spans, kv, head_dim, p, scores, out);
}

void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out) {
  avx512::attend_group(&q, 1, &span, kv, head_dim, p, scores, &out);
}

}  // namespace osprey::kernels::avx512
