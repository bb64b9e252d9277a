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
// and, for a level whose table offers attend_heads (HeadsInLanes below):
//   splat_heads<H>(p)         p[0..H) repeated across the lanes (p aligned to H floats)
//   zip_lo(a, b), zip_hi(a, b)  a0 b0 a1 b1 ... from the lower halves of a and
//                             b, and the same from the upper halves
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/attend_tiled.h"
#include "kernels/dispatch.h"
#include "kernels/ops.h"

namespace osprey::kernels {

template <class V>
struct LaneAttention {
  using Lanes = V;
  static constexpr int kTile = V::kTile, kLanes = V::kLanes;
  static constexpr int kMaxBlocks = (kMaxGroupQueries + kLanes - 1) / kLanes;
  using F = typename V::F;

  // Scores of one block of queries against one tile: s[r] lane i = sum over
  // d of K[r][d] * q_i[d], in order of d. Key row r starts at kf + r * kLd
  // (or r * ld when kLd is 0; see tile_values). With H heads interleaved in
  // it (HeadsInLanes), element d of each head is at d * H, and a broadcast of
  // those H values meets every lane with its own head's key.
  // The sums are the function's own until the end: vector types may alias
  // the key rows, so sums kept in the caller's array would be stored to it
  // after every step (which cost the AVX2 level a quarter of its speed).
  template <int H, int kLd>
  static void tile_scores(const float* kf, int ld, const float (*qt)[kLanes], int head_dim, F s[kTile]) {
    if constexpr (kLd > 0) ld = kLd;
    F acc[kTile];
    for (int r = 0; r < kTile; ++r) acc[r] = V::zero();
    for (int d = 0; d < head_dim; ++d) {
      const F qd = V::load(qt[d]);
      for (int r = 0; r < kTile; ++r) {
        const float* k = kf + r * ld + d * H;
        if constexpr (H == 1) {
          acc[r] = V::mul_add(acc[r], V::splat_from(k), qd);
        } else {
          acc[r] = V::mul_add(acc[r], V::template splat_heads<H>(k), qd);
        }
      }
    }
    for (int r = 0; r < kTile; ++r) s[r] = acc[r];
  }

  // o_i = o_i * alpha_i + sum over the tile's positions r of p[r][i] * V[r],
  // for NQ queries at once (each loaded V vector serves them all) over NJ
  // vectors starting at vector j0. Positions past a query's span have p = 0
  // and finite (or zeroed) V, so every query adds all kTile and gets the same
  // bits however many positions the tile holds for it.
  // V rows are kLdv floats apart, or ldv when kLdv is 0: Group's fixed
  // stride leaves the address arithmetic to the compiler (a runtime stride
  // cost the AVX2 level 5-8% of its attention on a Zen 5).
  template <int NQ, int NJ, int kLdv>
  static void tile_values(float* const* o, const float* const* p, const float* alpha, const float* vf, int ldv,
                          int j0) {
    constexpr int W = kLanes;
    if constexpr (kLdv > 0) ldv = kLdv;
    F acc[NQ][NJ];
    for (int i = 0; i < NQ; ++i)
      for (int j = 0; j < NJ; ++j) acc[i][j] = V::mul(V::load(o[i] + W * (j0 + j)), V::splat_from(alpha + i));
    for (int r = 0; r < kTile; ++r) {
      F v[NJ];
      for (int j = 0; j < NJ; ++j) v[j] = V::load(vf + r * ldv + W * (j0 + j));
      for (int i = 0; i < NQ; ++i) {
        const F pr = V::splat_from(p[i] + r * kLanes);
        for (int j = 0; j < NJ; ++j) acc[i][j] = V::mul_add(acc[i][j], pr, v[j]);
      }
    }
    for (int i = 0; i < NQ; ++i)
      for (int j = 0; j < NJ; ++j) V::store(o[i] + W * (j0 + j), acc[i][j]);
  }

  template <int kLdv, int NQ = V::kValueQueries, int NJ = V::kValueVectors>
  static void tile_values_n(int nq, int nj, float* const* o, const float* const* p, const float* alpha,
                            const float* vf, int ldv, int j0) {
    if constexpr (NQ > 1) {
      if (nq < NQ) return tile_values_n<kLdv, NQ - 1, NJ>(nq, nj, o, p, alpha, vf, ldv, j0);
    }
    if constexpr (NJ > 1) {
      if (nj < NJ) return tile_values_n<kLdv, NQ, NJ - 1>(nq, nj, o, p, alpha, vf, ldv, j0);
    }
    tile_values<NQ, NJ, kLdv>(o, p, alpha, vf, ldv, j0);
  }

  // P.V for the n queries given (their outputs, probabilities by position
  // kLanes apart, and rescalings), over nv vectors; V rows as in tile_values.
  template <int kLdv>
  static void tile_values_all(int n, int nv, float* const* os, const float* const* ps, const float* as,
                              const float* vf, int ldv) {
    for (int i = 0; i < n; i += V::kValueQueries)
      for (int j = 0; j < nv; j += V::kValueVectors)
        tile_values_n<kLdv>(std::min(V::kValueQueries, n - i), std::min(V::kValueVectors, nv - j), os + i, ps + i,
                            as + i, vf, ldv, j);
  }

  // The online softmax of one block over one tile, given its raw scores:
  // lane i sees rows [lo[i], hi[i]) of the tile. m, l and alpha are the
  // block's running max, running sum and this tile's rescaling; prob[r]
  // gets the tile's probabilities.
  [[gnu::always_inline]] static inline void block_softmax(F s[kTile], const int32_t* lo, const int32_t* hi, const AttendParams& p, float* m,
                            float* l, float* alpha, float (*prob)[kLanes]) {
    const F vscale = V::splat(p.scale), neg_inf = V::splat(-INFINITY);
    F m_new = V::load(m);
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
    const F a = V::select(seen, V::exp(V::sub(V::load(m), m_new)), V::splat(1.0f));
    F sum = V::zero();
    for (int r = 0; r < kTile; ++r) {
      const F pr = V::keep(seen, V::exp(V::sub(s[r], m_new)));
      V::store(prob[r], pr);
      sum = V::add(sum, pr);
    }
    V::store(l, V::mul_add(sum, V::load(l), a));
    V::store(alpha, a);
    V::store(m, m_new);
  }

  // Whether a query sees any row of the tile at t0.
  static bool sees_tile(const KvSpan& span, int64_t t0) {
    return span.begin < span.end && span.end > t0 && span.begin < t0 + kTile;
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
        tile_scores<1, kMaxTiledHeadDim>(kf[0], kMaxTiledHeadDim, qt_[b], head_dim_, s);
        block_softmax(s, lo, hi, p, m_[b], l_[b], alpha_[b], prob_[b]);
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
      tile_values_all<kMaxTiledHeadDim>(n_live, nv_, os, ps, as, vf[0], kMaxTiledHeadDim);
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

// Several KV heads in one block of lanes (ops.h: attend_heads): query j of
// head h takes lane j * H + h, so that a vector of H floats, heads 0 to H-1
// at one (row, dimension), repeated across the lanes, meets every lane with
// its own head's key. A lane's arithmetic is what Group gives the same
// query: its scores are the same chain of fused multiply-adds over d, its
// softmax is block_softmax, its values come from its own head's rows.
// Level is the level's LaneAttention (with widen_f16 and scale_row).
template <class Level>
struct HeadsInLanes {
  using V = typename Level::Lanes;
  using F = typename V::F;
  static constexpr int kLanes = V::kLanes, kTile = V::kTile;
  // The widest row of H heads the interleaved tile holds.
  static constexpr int kMaxHeadsWidth = 1024;

  // Values d0 .. d0 + kLanes - 1 of each head's row, stored so that value
  // d0 + e of head h lands at out[e * H + h]: log2(H) rounds of zipping row
  // i with row i + H/2.
  template <int H>
  static void interleave(const float (*rows_in)[kMaxTiledHeadDim], int d0, float* out) {
    F rows[H];
    for (int h = 0; h < H; ++h) rows[h] = V::load(rows_in[h] + d0);
    for (int step = 1; step < H; step *= 2) {
      F next[H];
      for (int i = 0; i < H / 2; ++i) {
        next[2 * i] = V::zip_lo(rows[i], rows[i + H / 2]);
        next[2 * i + 1] = V::zip_hi(rows[i], rows[i + H / 2]);
      }
      for (int i = 0; i < H; ++i) rows[i] = next[i];
    }
    for (int i = 0; i < H; ++i) V::store(out + kLanes * i, rows[i]);
  }

  // H heads' queries, per_head of them each (H * per_head <= kLanes), head-major.
  template <int H>
  static void block(const float* const* q, int per_head, const KvSpan* spans, const KvView& kv, int head_dim,
                    const AttendParams& p, float* const* out) {
    const int n_q = H * per_head, nv = head_dim / kLanes, width = H * head_dim;
    auto lane_of = [&](int i) { return (i % per_head) * H + i / per_head; };
    alignas(64) float qt[kMaxTiledHeadDim][kLanes];
    alignas(64) float m[kLanes], l[kLanes], alpha[kLanes], prob[kTile][kLanes];
    alignas(64) float o[kLanes][kMaxTiledHeadDim];
    for (int d = 0; d < head_dim; ++d) V::store(qt[d], V::zero());
    for (int lane = 0; lane < kLanes; ++lane) m[lane] = 0.0f, l[lane] = 0.0f;  // lanes with no query stay finite
    for (int i = 0; i < n_q; ++i) {
      const int lane = lane_of(i);
      for (int d = 0; d < head_dim; ++d) qt[d][lane] = V::round_to_half(q[i][d]);
      m[lane] = -INFINITY;
      for (int j = 0; j < nv; ++j) V::store(o[i] + kLanes * j, V::zero());
    }
    int64_t first = INT64_MAX, last = 0;  // the positions any query sees
    for (int i = 0; i < n_q; ++i)
      if (spans[i].begin < spans[i].end) first = std::min(first, spans[i].begin), last = std::max(last, spans[i].end);
    int64_t k_off[H], v_off[H];  // where each head's part of a row begins
    for (int h = 0; h < H; ++h)
      k_off[h] = kv_row_bytes(kv.k_type, h * head_dim), v_off[h] = kv_row_bytes(kv.v_type, h * head_dim);
    const int64_t k_bytes = kv_row_bytes(kv.k_type, int64_t{H} * head_dim);
    const int64_t v_bytes = kv_row_bytes(kv.v_type, int64_t{H} * head_dim);
    // The tile: keys interleaved across heads (row r: (d, h) at d * H + h),
    // values per head (head h's row r at (h * kTile + r) * head_dim).
    alignas(64) float kf[kTile * kMaxHeadsWidth], vf[kTile * kMaxHeadsWidth];
    alignas(64) float key[H][kMaxTiledHeadDim];  // one row's keys, head by head, before interleaving
    for (int64_t t0 = first < last ? first / kTile * kTile : last; t0 < last; t0 += kTile) {
      // The next tile's rows are requested now, so that they arrive while
      // this one is computed: in batched decode each sequence's rows come
      // from memory, not cache. (Tried in a scratch build on a Zen 5 at the
      // AVX-512 level, Qwen3-0.6B, 8 sequences at depth 1024: attention took
      // 58-62 ms a step without it and 49-51 with it; two and four tiles
      // ahead were no better.)
      for (int64_t t = t0 + kTile, e = std::min(t0 + 2 * kTile, last); t < e; ++t) {
        const int64_t row = kv_storage_row(kv, t);
        for (int64_t b = 0; b < k_bytes; b += 64) __builtin_prefetch(kv.k + row * kv.k_stride + b);
        for (int64_t b = 0; b < v_bytes; b += 64) __builtin_prefetch(kv.v + row * kv.v_stride + b);
      }
      for (int r = 0; r < kTile; ++r) {
        float* krow = kf + r * width;
        if (t0 + r >= first && t0 + r < last) {
          const int64_t row = kv_storage_row(kv, t0 + r);
          for (int h = 0; h < H; ++h) {
            load_kv_row<Level>(kv.k_type, kv.k + row * kv.k_stride + k_off[h], key[h], head_dim);
            load_kv_row<Level>(kv.v_type, kv.v + row * kv.v_stride + v_off[h], vf + (h * kTile + r) * head_dim,
                               head_dim);
          }
          for (int d0 = 0; d0 < head_dim; d0 += kLanes) interleave<H>(key, d0, krow + d0 * H);
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
      if (!V::any_live(lo, hi)) continue;  // no query sees this tile
      F s[kTile];
      Level::template tile_scores<H, 0>(kf, width, qt, head_dim, s);
      Level::block_softmax(s, lo, hi, p, m, l, alpha, prob);
      // P.V, head by head, for the queries that see this tile.
      for (int h = 0; h < H; ++h) {
        float* os[kLanes];
        const float* ps[kLanes];
        float as[kLanes];
        int n_live = 0;
        for (int i = h * per_head; i < (h + 1) * per_head; ++i) {
          if (!Level::sees_tile(spans[i], t0)) continue;
          os[n_live] = o[i];
          ps[n_live] = &prob[0][lane_of(i)];
          as[n_live] = alpha[lane_of(i)];
          ++n_live;
        }
        Level::template tile_values_all<0>(n_live, nv, os, ps, as, vf + h * kTile * head_dim, head_dim);
      }
    }
    for (int i = 0; i < n_q; ++i)
      finish_query<Level>(m[lane_of(i)], l[lane_of(i)], o[i], p.sinks != nullptr ? p.sinks + i : nullptr, out[i],
                          head_dim);
  }

  // attend_heads: as many heads per block as fill the lanes (a power of two,
  // for the broadcast); a head that shares a block with none goes to
  // one_head, the level's attend_group.
  static void run(const float* const* q, int n_q, int n_heads, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out, AttendGroupFn one_head) {
    const int per_head = n_heads > 0 ? n_q / n_heads : 0;
    for (int h = 0; h < n_heads;) {
      int take = 1;
      if (head_dim % kLanes == 0 && head_dim <= kMaxTiledHeadDim)
        while (take * 2 <= n_heads - h && take * 2 * per_head <= kLanes && take * 2 * head_dim <= kMaxHeadsWidth)
          take *= 2;
      KvView at = kv;
      at.k += kv_row_bytes(kv.k_type, int64_t{h} * head_dim);
      at.v += kv_row_bytes(kv.v_type, int64_t{h} * head_dim);
      AttendParams ph = p;
      if (p.sinks != nullptr) ph.sinks = p.sinks + h * per_head;
      const int i = h * per_head;
      if constexpr (kLanes >= 16) {
        if (take == 16) block<16>(q + i, per_head, spans + i, at, head_dim, ph, out + i);
      }
      if constexpr (kLanes >= 8) {
        if (take == 8) block<8>(q + i, per_head, spans + i, at, head_dim, ph, out + i);
      }
      if (take == 4) block<4>(q + i, per_head, spans + i, at, head_dim, ph, out + i);
      if (take == 2) block<2>(q + i, per_head, spans + i, at, head_dim, ph, out + i);
      if (take == 1) one_head(q + i, per_head, spans + i, at, head_dim, ph, scores, out + i);
      h += take;
    }
  }
};

}  // namespace osprey::kernels
