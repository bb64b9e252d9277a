// SIMD128 flash-style attention over fp16 keys and values, on the shared
// tile driver (kernels/attend_tiled.h): the NEON level's arithmetic on
// WebAssembly vectors, tiles of 8 positions. SIMD128 has no fused
// multiply-add, so products are rounded before they are added. The query is
// rounded to fp16 to meet the keys; probabilities and sums stay fp32.
#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "kernels/attend_tiled.h"
#include "kernels/ops.h"
#include "kernels/wasm/simd128_util.h"
#include "kernels/wasm/wasm.h"

namespace osprey::kernels::wasm {

namespace {

inline v128_t mul_add(v128_t acc, v128_t a, v128_t b) { return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b)); }

// e^x to about 2 ulp for x <= 0; below the smallest normal float, and for
// x = -inf, exactly 0.
inline v128_t exp4(v128_t x) {
  const v128_t lo = wasm_f32x4_splat(-87.33654f);  // ln(FLT_MIN)
  const v128_t tiny = wasm_f32x4_lt(x, lo);
  x = wasm_f32x4_max(wasm_f32x4_min(x, wasm_f32x4_splat(88.3762626647949f)), lo);
  const v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t y = wasm_f32x4_splat(1.9875691500e-4f);
  y = mul_add(wasm_f32x4_splat(1.3981999507e-3f), y, r);
  y = mul_add(wasm_f32x4_splat(8.3334519073e-3f), y, r);
  y = mul_add(wasm_f32x4_splat(4.1665795894e-2f), y, r);
  y = mul_add(wasm_f32x4_splat(1.6666665459e-1f), y, r);
  y = mul_add(wasm_f32x4_splat(5.0000001201e-1f), y, r);
  y = mul_add(wasm_f32x4_add(r, wasm_f32x4_splat(1.0f)), y, wasm_f32x4_mul(r, r));
  const v128_t bits = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_v128_andnot(wasm_f32x4_mul(y, bits), tiny);
}

// Lane j = the sum of a[j]'s lanes.
inline v128_t reduce4(const v128_t* a) {
  const v128_t p01 = wasm_f32x4_add(wasm_i32x4_shuffle(a[0], a[1], 0, 4, 2, 6), wasm_i32x4_shuffle(a[0], a[1], 1, 5, 3, 7));
  const v128_t p23 = wasm_f32x4_add(wasm_i32x4_shuffle(a[2], a[3], 0, 4, 2, 6), wasm_i32x4_shuffle(a[2], a[3], 1, 5, 3, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(p01, p23, 0, 1, 4, 5), wasm_i32x4_shuffle(p01, p23, 2, 3, 6, 7));
}

// cap * tanh(x / cap), through e^(-2|x|/cap) so that the exponent stays <= 0.
inline v128_t softcap4(v128_t x, float cap) {
  const v128_t e = exp4(wasm_f32x4_mul(wasm_f32x4_abs(x), wasm_f32x4_splat(-2.0f / cap)));
  const v128_t one = wasm_f32x4_splat(1.0f);
  const v128_t t = wasm_f32x4_div(wasm_f32x4_sub(one, e), wasm_f32x4_add(one, e));
  const v128_t sign = wasm_v128_and(x, wasm_i32x4_splat(static_cast<int32_t>(0x80000000u)));
  return wasm_f32x4_mul(wasm_v128_or(t, sign), wasm_f32x4_splat(cap));
}

// The level's part of attend_tiled: one query at a time over a tile of 8,
// as two vectors of four scores.
struct Simd128Attention {
  static constexpr int kTile = 8, kWidth = 4;

  static void fallback(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                       const AttendParams& p, float* scores, float* const* out) {
    kernels::attend_group(q, n_q, spans, kv, head_dim, p, scores, out);
  }
  static void widen_f16(const uint16_t* src, float* dst, int n) {
    for (int j = 0; j < n; j += 4) wasm_v128_store(dst + j, half4_to_f32(src + j));
  }
  static void scale_row(const float* src, float f, float* dst, int n) {
    for (int j = 0; j < n; j += 4) wasm_v128_store(dst + j, wasm_f32x4_mul(wasm_v128_load(src + j), wasm_f32x4_splat(f)));
  }

  class Group {
   public:
    // The queries are rounded to fp16 to meet the fp16 keys.
    Group(const float* const* q, int n_q, int head_dim) : n_q_(n_q), nv_(head_dim / 4) {
      for (int i = 0; i < n_q; ++i) {
        m_[i] = -INFINITY;
        l_[i] = 0;
        for (int j = 0; j < head_dim; ++j) {
          qh_[i][j] = fp16_to_fp32(fp32_to_fp16(q[i][j]));
          o_[i][j] = 0;
        }
      }
    }
    float max(int i) const { return m_[i]; }
    float sum(int i) const { return l_[i]; }
    const float* acc(int i) const { return o_[i]; }

    void tile(int64_t t0, const KvSpan* spans, const AttendParams& p, const float (*kf)[kMaxTiledHeadDim],
              const float (*vf)[kMaxTiledHeadDim]) {
      const v128_t lane_lo = wasm_f32x4_make(0, 1, 2, 3), lane_hi = wasm_f32x4_make(4, 5, 6, 7);
      for (int i = 0; i < n_q_; ++i) {
        // This query's rows of the tile: [lo, hi).
        const int lo = static_cast<int>(std::clamp<int64_t>(spans[i].begin - t0, 0, kTile));
        const int hi = static_cast<int>(std::clamp<int64_t>(spans[i].end - t0, 0, kTile));
        if (lo >= hi) continue;
        v128_t acc[kTile];
        for (int r = 0; r < kTile; ++r) acc[r] = wasm_f32x4_splat(0);
        for (int j = 0; j < nv_; ++j) {
          const v128_t qv = wasm_v128_load(qh_[i] + 4 * j);
          for (int r = 0; r < kTile; ++r) acc[r] = mul_add(acc[r], qv, wasm_v128_load(kf[r] + 4 * j));
        }
        const v128_t vhi = wasm_f32x4_splat(static_cast<float>(hi)), vlo = wasm_f32x4_splat(static_cast<float>(lo));
        const v128_t ninf = wasm_f32x4_splat(-INFINITY), scale = wasm_f32x4_splat(p.scale);
        v128_t c_lo = wasm_f32x4_mul(reduce4(acc), scale), c_hi = wasm_f32x4_mul(reduce4(acc + 4), scale);
        if (p.softcap > 0) c_lo = softcap4(c_lo, p.softcap), c_hi = softcap4(c_hi, p.softcap);
        const v128_t s_lo =
            wasm_v128_bitselect(c_lo, ninf, wasm_v128_and(wasm_f32x4_lt(lane_lo, vhi), wasm_f32x4_ge(lane_lo, vlo)));
        const v128_t s_hi =
            wasm_v128_bitselect(c_hi, ninf, wasm_v128_and(wasm_f32x4_lt(lane_hi, vhi), wasm_f32x4_ge(lane_hi, vlo)));
        const float m_new = std::fmax(m_[i], hmax_f32x4(wasm_f32x4_max(s_lo, s_hi)));
        const float alpha = wasm_f32x4_extract_lane(exp4(wasm_f32x4_splat(m_[i] - m_new)), 0);
        const v128_t p_lo = exp4(wasm_f32x4_sub(s_lo, wasm_f32x4_splat(m_new)));
        const v128_t p_hi = exp4(wasm_f32x4_sub(s_hi, wasm_f32x4_splat(m_new)));
        m_[i] = m_new;
        l_[i] = l_[i] * alpha + hsum_f32x4(wasm_f32x4_add(p_lo, p_hi));
        alignas(16) float pv[kTile];
        wasm_v128_store(pv, p_lo);
        wasm_v128_store(pv + 4, p_hi);
        const v128_t va = wasm_f32x4_splat(alpha);
        for (int j = 0; j < nv_; ++j) {
          v128_t a = wasm_f32x4_mul(wasm_v128_load(o_[i] + 4 * j), va);
          for (int r = lo; r < hi; ++r) a = mul_add(a, wasm_v128_load(vf[r] + 4 * j), wasm_f32x4_splat(pv[r]));
          wasm_v128_store(o_[i] + 4 * j, a);
        }
      }
    }

   private:
    int n_q_, nv_;
    alignas(16) float qh_[kMaxGroupQueries][kMaxTiledHeadDim];
    alignas(16) float o_[kMaxGroupQueries][kMaxTiledHeadDim];
    float m_[kMaxGroupQueries], l_[kMaxGroupQueries];
  };
};

}  // namespace

void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  attend_tiled<Simd128Attention>(q, n_q, spans, kv, head_dim, p, scores, out);
}

void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out) {
  wasm::attend_group(&q, 1, &span, kv, head_dim, p, scores, &out);
}

}  // namespace osprey::kernels::wasm
