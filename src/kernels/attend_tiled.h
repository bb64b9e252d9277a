// The driver every SIMD attention kernel shares (NEON, AVX2, AVX-512): what
// is the same at every level is here once, and a level supplies only the
// arithmetic of one tile.
//
// The algorithm is flash-style. Positions are taken in tiles of Level::kTile,
// fixed by absolute position (tile k covers kTile*k .. kTile*k + kTile-1
// wherever the cache stores them). Each tile's K and V rows are decoded to
// fp32 once and then serve every query of the call, and each query keeps a
// running max, a running sum and a rescaled output (online softmax), so
// nothing is stored per position. A query's arithmetic depends only on its
// own query, span and the cache contents: alone, in any group and over any
// block layout it gets the same bits.
//
// A Level provides:
//   kTile, kWidth                 positions per tile; floats per vector
//   fallback(...)                 attend_group for heads it cannot take
//                                 (not a multiple of kWidth, or over 256)
//   widen_f16(src, dst, n)        n fp16 values to fp32, n a multiple of kWidth
//   scale_row(src, f, dst, n)     dst = src * f
//   Group(q, n_q, head_dim)       the running state of up to kMaxGroupQueries
//                                 queries, with tile(t0, spans, p, kf, vf),
//                                 max(i), sum(i) and acc(i) (the unnormalised
//                                 output)
//
// Everything here is a template of the Level, so each level's copy is
// compiled with that level's flags and none is shared between them (an
// inline function compiled with AVX-512 flags must never serve AVX2 callers).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/kv_row.h"
#include "kernels/ops.h"

namespace osprey::kernels {

// The widest head the fixed-size tile buffers hold.
constexpr int kMaxTiledHeadDim = 256;

// Decodes one cache row to fp32: fp16 rows at the level's width, other cache
// types through the shared row decoder.
template <class Level>
void load_kv_row(DType type, const uint8_t* row, float* dst, int head_dim) {
  if (type == DType::kF16) {
    Level::widen_f16(reinterpret_cast<const uint16_t*>(row), dst, head_dim);
  } else {
    decode_kv_row(type, row, dst, head_dim);
  }
}

// Query i's result from its running max m, its running sum l and its
// unnormalised output acc. A sink joins the denominator only: it is folded
// into the max and the sum.
template <class Level>
void finish_query(float m, float l, const float* acc, const float* sink, float* out, int head_dim) {
  float scale_o = 1.0f, sum = l;
  if (sink != nullptr) {
    const float m_f = std::fmax(m, *sink);
    scale_o = std::exp(m - m_f);
    sum = l * scale_o + std::exp(*sink - m_f);
  }
  Level::scale_row(acc, sum > 0 ? scale_o / sum : 0.0f, out, head_dim);
}

template <class Level>
void attend_tiled(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  constexpr int kTile = Level::kTile;
  if (head_dim % Level::kWidth != 0 || head_dim > kMaxTiledHeadDim) {
    Level::fallback(q, n_q, spans, kv, head_dim, p, scores, out);
    return;
  }
  if (n_q > kMaxGroupQueries) {  // callers stay within the limit; this keeps the kernel total
    for (int i = 0; i < n_q; i += kMaxGroupQueries) {
      AttendParams pi = p;
      if (p.sinks != nullptr) pi.sinks = p.sinks + i;
      attend_tiled<Level>(q + i, std::min(kMaxGroupQueries, n_q - i), spans + i, kv, head_dim, pi, scores, out + i);
    }
    return;
  }
  int64_t first = INT64_MAX, last = 0;  // the positions any query sees
  for (int i = 0; i < n_q; ++i)
    if (spans[i].begin < spans[i].end) first = std::min(first, spans[i].begin), last = std::max(last, spans[i].end);
  typename Level::Group group(q, n_q, head_dim);
  alignas(64) float kf[kTile][kMaxTiledHeadDim], vf[kTile][kMaxTiledHeadDim];  // the tile's keys and values
  for (int64_t t0 = first < last ? first / kTile * kTile : last; t0 < last; t0 += kTile) {
    for (int r = 0; r < kTile; ++r) {
      if (t0 + r >= first && t0 + r < last) {
        const int64_t row = kv_storage_row(kv, t0 + r);
        load_kv_row<Level>(kv.k_type, kv.k + row * kv.k_stride, kf[r], head_dim);
        load_kv_row<Level>(kv.v_type, kv.v + row * kv.v_stride, vf[r], head_dim);
      } else {
        // Rows outside [first, last) may not be stored at all (a window's
        // dropped blocks); they are zeros that no query weighs.
        std::memset(kf[r], 0, sizeof(float) * static_cast<size_t>(head_dim));
        std::memset(vf[r], 0, sizeof(float) * static_cast<size_t>(head_dim));
      }
    }
    group.tile(t0, spans, p, kf, vf);
  }
  for (int i = 0; i < n_q; ++i)
    finish_query<Level>(group.max(i), group.sum(i), group.acc(i), p.sinks != nullptr ? p.sinks + i : nullptr, out[i],
                        head_dim);
}

}  // namespace osprey::kernels
