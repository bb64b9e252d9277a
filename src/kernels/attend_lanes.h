// Flash-style attention with the queries in lanes, written once for every
// SIMD level that meets the shared tile driver (kernels/attend_tiled.h).
//
// A block of kLanes queries meets a tile of kTile positions as kTile vectors
// of scores, one per position, each holding that position's score for every
// query of the block: the keys' elements are broadcast against the block's
// transposed queries. The online softmax is then elementwise across those
// vectors, with no reduction across lanes, and each loaded value vector
// serves several queries. A lane's arithmetic never depends on the lanes
// beside it, so a query gets the same bits alone or in any group.
//
// A level supplies its vector operations as a struct V (in an unnamed
// namespace, so that each level's instantiation, compiled with its own
// target flags, stays its own):
//   F, M                      a vector of kLanes floats, and a lane mask
//   kLanes, kTile             queries per block, positions per tile
//   kValueQueries, kValueVectors  the P.V register block (queries x vectors)
//   zero(), splat(x), splat_from(p), load(p), store(p, v)   (p 16/32/64-aligned)
//   add, sub, mul, max(a, b); mul_add(acc, a, b) = acc + a * b, fused where
//     the level fuses
//   exp(x)                    e^x for x <= 0, exactly 0 below FLT_MIN and at -inf
//   softcap(x, cap)           cap * tanh(x / cap)
//   live(lo, hi, r)           lanes with lo <= r < hi (int32 arrays of kLanes)
//   any_live(lo, hi)          some lane has lo < hi
//   seen(m)                   lanes with m > -inf (false for -inf and for NaN)
//   select(m, a, b)           a where m, else b
//   keep(m, a)                a where m, else 0
//   round_to_half(x)          x rounded to fp16 and back (the keys' precision)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/attend_tiled.h"
#include "kernels/ops.h"

namespace osprey::kernels {

template <class V>
struct LaneAttention {
  static constexpr int kTile = V::kTile, kLanes = V::kLanes;
  static constexpr int kMaxBlocks = (kMaxGroupQueries + kLanes - 1) / kLanes;
  using F = typename V::F;

  // Scores of one block of queries against one tile: s[r] lane i = sum over
  // d of K[r][d] * q_i[d], in order of d.
  // The sums are the function's own until the end: vector types may alias
  // the key rows, so sums kept in the caller's array would be stored to it
  // after every step (which cost the AVX2 level a quarter of its speed).
  static void tile_scores(const float (*kf)[kMaxTiledHeadDim], const float (*qt)[kLanes], int head_dim, F s[kTile]) {
    F acc[kTile];
    for (int r = 0; r < kTile; ++r) acc[r] = V::zero();
    for (int d = 0; d < head_dim; ++d) {
      const F qd = V::load(qt[d]);
      for (int r = 0; r < kTile; ++r) acc[r] = V::mul_add(acc[r], V::splat_from(&kf[r][d]), qd);
    }
    for (int r = 0; r < kTile; ++r) s[r] = acc[r];
  }

  // o_i = o_i * alpha_i + sum over the tile's positions r of p[r][i] * V[r],
  // for NQ queries at once (each loaded V vector serves them all) over NJ
  // vectors starting at vector j0. Positions past a query's span have p = 0
  // and finite (or zeroed) V, so every query adds all kTile and gets the same
  // bits however many positions the tile holds for it.
  template <int NQ, int NJ>
  static void tile_values(float* const* o, const float* const* p, const float* alpha,
                          const float (*vf)[kMaxTiledHeadDim], int j0) {
    constexpr int W = kLanes;
    F acc[NQ][NJ];
    for (int i = 0; i < NQ; ++i)
      for (int j = 0; j < NJ; ++j) acc[i][j] = V::mul(V::load(o[i] + W * (j0 + j)), V::splat_from(alpha + i));
    for (int r = 0; r < kTile; ++r) {
      F v[NJ];
      for (int j = 0; j < NJ; ++j) v[j] = V::load(vf[r] + W * (j0 + j));
      for (int i = 0; i < NQ; ++i) {
        const F pr = V::splat_from(p[i] + r * kLanes);
        for (int j = 0; j < NJ; ++j) acc[i][j] = V::mul_add(acc[i][j], pr, v[j]);
      }
    }
    for (int i = 0; i < NQ; ++i)
      for (int j = 0; j < NJ; ++j) V::store(o[i] + W * (j0 + j), acc[i][j]);
  }

  template <int NQ = V::kValueQueries, int NJ = V::kValueVectors>
  static void tile_values_n(int nq, int nj, float* const* o, const float* const* p, const float* alpha,
                            const float (*vf)[kMaxTiledHeadDim], int j0) {
    if constexpr (NQ > 1) {
      if (nq < NQ) return tile_values_n<NQ - 1, NJ>(nq, nj, o, p, alpha, vf, j0);
    }
    if constexpr (NJ > 1) {
      if (nj < NJ) return tile_values_n<NQ, NJ - 1>(nq, nj, o, p, alpha, vf, j0);
    }
    tile_values<NQ, NJ>(o, p, alpha, vf, j0);
  }

  class Group {
   public:
    Group(const float* const* q, int n_q, int head_dim)
        : n_q_(n_q), nv_(head_dim / kLanes), head_dim_(head_dim), n_blocks_((n_q + kLanes - 1) / kLanes) {
      for (int b = 0; b < n_blocks_; ++b)
        for (int d = 0; d < head_dim; ++d)
          for (int lane = 0; lane < kLanes; ++lane) {
            const int i = b * kLanes + lane;
            qt_[b][d][lane] = i < n_q ? V::round_to_half(q[i][d]) : 0.0f;
          }
      for (int b = 0; b < n_blocks_; ++b)
        for (int lane = 0; lane < kLanes; ++lane) {
          m_[b][lane] = b * kLanes + lane < n_q ? -INFINITY : 0.0f;
          l_[b][lane] = 0;
        }
      for (int i = 0; i < n_q; ++i)
        for (int j = 0; j < nv_; ++j) V::store(o_[i] + kLanes * j, V::zero());
    }
    float max(int i) const { return m_[i / kLanes][i % kLanes]; }
    float sum(int i) const { return l_[i / kLanes][i % kLanes]; }
    const float* acc(int i) const { return o_[i]; }

    void tile(int64_t t0, const KvSpan* spans, const AttendParams& p, const float (*kf)[kMaxTiledHeadDim],
              const float (*vf)[kMaxTiledHeadDim]) {
      const F vscale = V::splat(p.scale), neg_inf = V::splat(-INFINITY);
      // Scores and the online softmax, a block of queries at a time.
      for (int b = 0; b < n_blocks_; ++b) {
        alignas(64) int32_t lo[kLanes], hi[kLanes];  // the rows of this tile each lane sees: [lo, hi)
        for (int lane = 0; lane < kLanes; ++lane) {
          const int i = b * kLanes + lane;
          lo[lane] = i < n_q_ ? static_cast<int32_t>(std::clamp<int64_t>(spans[i].begin - t0, 0, kTile)) : 0;
          hi[lane] = i < n_q_ ? static_cast<int32_t>(std::clamp<int64_t>(spans[i].end - t0, 0, kTile)) : 0;
        }
        if (!V::any_live(lo, hi)) continue;  // no query of the block sees this tile
        F s[kTile];
        tile_scores(kf, qt_[b], head_dim_, s);
        F m_new = V::load(m_[b]);
        for (int r = 0; r < kTile; ++r) {
          F sr = V::mul(s[r], vscale);
          if (p.softcap > 0) sr = V::softcap(sr, p.softcap);
          s[r] = V::select(V::live(lo, hi, r), sr, neg_inf);
          m_new = V::max(m_new, s[r]);
        }
        // A lane that has seen nothing yet keeps max -inf: its probabilities
        // are 0 and its (empty) sums are left as they are.
        const typename V::M seen = V::seen(m_new);
        // e^(m_old - m_new) rescales what came before (0 on a query's first tile).
        const F a = V::select(seen, V::exp(V::sub(V::load(m_[b]), m_new)), V::splat(1.0f));
        F sum = V::zero();
        for (int r = 0; r < kTile; ++r) {
          const F pr = V::keep(seen, V::exp(V::sub(s[r], m_new)));
          V::store(prob_[b][r], pr);
          sum = V::add(sum, pr);
        }
        V::store(l_[b], V::mul_add(sum, V::load(l_[b]), a));
        V::store(alpha_[b], a);
        V::store(m_[b], m_new);
      }
      // P.V for the queries that still see positions, kValueQueries at a time.
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
      for (int i = 0; i < n_live; i += V::kValueQueries)
        for (int j = 0; j < nv_; j += V::kValueVectors)
          tile_values_n(std::min(V::kValueQueries, n_live - i), std::min(V::kValueVectors, nv_ - j), os + i, ps + i,
                        as + i, vf, j);
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

}  // namespace osprey::kernels
