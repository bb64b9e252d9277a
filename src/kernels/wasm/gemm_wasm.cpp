// SIMD128 row kernels for Q8_0 and Q4_0 weights, with activations encoded
// once per row as 16-bit levels: SIMD128 multiplies bytes only after
// widening them, so widening the activations at encoding time, once, leaves
// the weights as the only bytes widened per product (Q4_0's nibbles are not
// even widened: see Q4_0Weights). A prompt tile of up to 4 tokens unpacks
// each weight block once for all of them, and each pass takes two rows,
// which share the activation loads. Decode is the same code with one token,
// so a token's result is the same bits whatever tile it is in.
#include "core/fp16.h"
#include "kernels/dispatch.h"
#include "kernels/tile_dispatch.h"
#include "kernels/wasm/simd128_util.h"
#include "kernels/wasm/wasm.h"
#include "quant/blocks.h"
#include "quant/quant.h"

namespace osprey::kernels::wasm {

using namespace osprey::quant;

namespace {

// One block of 32 activations: the q8_0 encoding (the same levels and
// scale as the scalar reference's), levels widened to 16 bits, in the order
// the weight format unpacks its levels in (Layout::kNibblePairs: see
// Q4_0Weights). Weights stored as level + 8 (Q4_0) also need 8 times the
// sum of the activations that meet each i32 lane of the block's product,
// which comes off that lane (sum (l + 8) a = sum l a + 8 sum a).
enum class Layout { kInOrder, kNibblePairs };

template <Layout L>
struct ActBlock {
  float d;
  int16_t q[kQK];
};

template <>
struct ActBlock<Layout::kNibblePairs> {
  float d;
  int16_t q[kQK];
  int32_t offset[4];
};

template <Layout L>
int64_t act_bytes(int64_t n) { return n / kQK * static_cast<int64_t>(sizeof(ActBlock<L>)); }

// Position p of a kNibblePairs block holds element nibble_pair_element(p):
// elements 0, 2, .., 14, then 1, 3, .., 15, then 16, 18, .., 30, then 17, 19, .., 31.
constexpr int nibble_pair_element(int p) { return 2 * (p % 8) + (p / 8) % 2 + 16 * (p / 16); }

// std::round (halves away from zero) of integer-or-not lanes, exactly: the
// fraction v - trunc(v) is exact in floats. An infinite lane stays infinite
// (its fraction is NaN, which compares false), a NaN stays NaN.
inline v128_t round_half_away(v128_t v) {
  const v128_t t = wasm_f32x4_trunc(v);
  const v128_t away = wasm_f32x4_ge(wasm_f32x4_abs(wasm_f32x4_sub(v, t)), wasm_f32x4_splat(0.5f));
  const v128_t one = wasm_v128_or(wasm_f32x4_splat(1.0f), wasm_v128_and(v, wasm_i32x4_splat(static_cast<int32_t>(0x80000000u))));
  return wasm_f32x4_add(t, wasm_v128_and(away, one));
}

// The scalar reference's q8_0 encoding (quant/quant_util.h,
// quantize_block_q8) lane by lane, with the same float operations in the
// same order: the largest magnitude passes over NaN as std::fmax does
// (pmax keeps its first operand then), levels round halves away from zero,
// and the clamp sends NaN to 127 as fmin/fmax do.
template <Layout L>
void encode(const float* x, void* act, int64_t n) {
  auto* out = static_cast<ActBlock<L>*>(act);
  const v128_t abs_mask = wasm_i32x4_splat(0x7FFFFFFF);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* xb = x + i * kQK;
    v128_t v[8];
    v128_t amax = wasm_f32x4_splat(0);
    for (int j = 0; j < 8; ++j) {
      v[j] = wasm_v128_load(xb + 4 * j);
      amax = wasm_f32x4_pmax(amax, wasm_v128_and(v[j], abs_mask));
    }
    const float d = hmax_f32x4(amax) / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    out[i].d = fp16_to_fp32(fp32_to_fp16(d));
    const v128_t vid = wasm_f32x4_splat(id), hi = wasm_f32x4_splat(127.0f), lo = wasm_f32x4_splat(-127.0f);
    v128_t q[8];
    for (int j = 0; j < 8; ++j) {
      const v128_t r = round_half_away(wasm_f32x4_mul(v[j], vid));
      q[j] = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_pmax(lo, wasm_f32x4_pmin(hi, r)));
    }
    v128_t h[4];  // elements 8j .. 8j + 7
    for (int j = 0; j < 4; ++j) h[j] = wasm_i16x8_narrow_i32x4(q[2 * j], q[2 * j + 1]);
    if constexpr (L == Layout::kNibblePairs) {
      const v128_t eight = wasm_i16x8_splat(8);
      v128_t offset = wasm_i32x4_splat(0);
      for (int half = 0; half < 2; ++half) {
        const v128_t even = wasm_i16x8_shuffle(h[2 * half], h[2 * half + 1], 0, 2, 4, 6, 8, 10, 12, 14);
        const v128_t odd = wasm_i16x8_shuffle(h[2 * half], h[2 * half + 1], 1, 3, 5, 7, 9, 11, 13, 15);
        wasm_v128_store(out[i].q + 16 * half, even);
        wasm_v128_store(out[i].q + 16 * half + 8, odd);
        offset = wasm_i32x4_add(offset, wasm_i32x4_add(wasm_i32x4_dot_i16x8(even, eight), wasm_i32x4_dot_i16x8(odd, eight)));
      }
      wasm_v128_store(out[i].offset, offset);
    } else {
      for (int j = 0; j < 4; ++j) wasm_v128_store(out[i].q + 8 * j, h[j]);
    }
  }
}

template <Layout L>
void reference(const float* x, void* act, int64_t n) {
  static const QuantOps* q8 = quant_ops(DType::kQ8_0);
  auto* out = static_cast<ActBlock<L>*>(act);
  for (int64_t i = 0; i < n / kQK; ++i) {
    BlockQ8_0 b;
    q8->quantize(x + i * kQK, &b, kQK);
    out[i].d = fp16_to_fp32(b.d);
    if constexpr (L == Layout::kNibblePairs) {
      for (int p = 0; p < kQK; ++p) out[i].q[p] = b.qs[nibble_pair_element(p)];
      // Vector v's i32 lane k multiplies its 16-bit lanes 2k and 2k + 1.
      for (int k = 0; k < 4; ++k) {
        out[i].offset[k] = 0;
        for (int v = 0; v < 4; ++v) out[i].offset[k] += 8 * (out[i].q[8 * v + 2 * k] + out[i].q[8 * v + 2 * k + 1]);
      }
    } else {
      for (int j = 0; j < kQK; ++j) out[i].q[j] = b.qs[j];
    }
  }
}

}  // namespace

void encode_widened_q8_reference(DType type, const float* x, void* act, int64_t n) {
  if (type == DType::kQ4_0) reference<Layout::kNibblePairs>(x, act, n);
  else reference<Layout::kInOrder>(x, act, n);
}

namespace {

// A weight block's 32 levels as four vectors of 16-bit lanes, and its scale.
struct Q8_0Weights {
  using Block = BlockQ8_0;
  static constexpr Layout kLayout = Layout::kInOrder;
  static float unpack(const Block& b, v128_t w[4]) {
    const v128_t lo = wasm_v128_load(b.qs), hi = wasm_v128_load(b.qs + 16);
    w[0] = wasm_i16x8_extend_low_i8x16(lo);
    w[1] = wasm_i16x8_extend_high_i8x16(lo);
    w[2] = wasm_i16x8_extend_low_i8x16(hi);
    w[3] = wasm_i16x8_extend_high_i8x16(hi);
    return fp16_to_fp32(b.d);
  }
};

// Byte k holds element k in its low nibble and element k + 16 in its high
// one, both as level + 8. Read as 16-bit lanes, a mask and three 16-bit
// shifts give each lane's four nibbles, already 16 bits wide; the activations
// are stored in the order that gives (kNibblePairs), and their offset
// vector takes off the + 8.
struct Q4_0Weights {
  using Block = BlockQ4_0;
  static constexpr Layout kLayout = Layout::kNibblePairs;
  static float unpack(const Block& b, v128_t w[4]) {
    const v128_t bytes = wasm_v128_load(b.qs);
    const v128_t low4 = wasm_i16x8_splat(0x000F);
    w[0] = wasm_v128_and(bytes, low4);                     // elements 0, 2, .., 14
    w[1] = wasm_v128_and(wasm_u16x8_shr(bytes, 8), low4);  // 1, 3, .., 15
    w[2] = wasm_v128_and(wasm_u16x8_shr(bytes, 4), low4);  // 16, 18, .., 30
    w[3] = wasm_u16x8_shr(bytes, 12);                      // 17, 19, .., 31
    return fp16_to_fp32(b.d);
  }
};

// NR rows against NT tokens, both fixed at compile time so that the
// accumulators are locals (wasm has no indexed registers: a runtime token
// count put them in linear memory, a load and a store per update). Each
// activation vector serves NR rows and each unpacked weight block NT tokens.
// A (row, token) result is the same sums in the same order whatever NR and
// NT are: the block's four i32 dots (exact, so their order is free), one
// float multiply-add per block, then the horizontal sum.
template <class W, int NR, int NT>
void tile(const uint8_t* w, int64_t row_bytes, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
          int64_t out_stride) {
  const int64_t nb = n / kQK;
  const typename W::Block* x[NR];
  for (int r = 0; r < NR; ++r) x[r] = reinterpret_cast<const typename W::Block*>(w + r * row_bytes);
  using Act = ActBlock<W::kLayout>;
  const Act* a[NT];
  for (int t = 0; t < NT; ++t) a[t] = reinterpret_cast<const Act*>(act + t * act_stride);
  v128_t acc[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc[r][t] = wasm_f32x4_splat(0);
  for (int64_t i = 0; i < nb; ++i) {
    v128_t wv[NR][4];
    float dw[NR];
    for (int r = 0; r < NR; ++r) dw[r] = W::unpack(x[r][i], wv[r]);
    for (int t = 0; t < NT; ++t) {
      const Act& b = a[t][i];
      v128_t s[NR];
      for (int j = 0; j < 4; ++j) {
        const v128_t av = wasm_v128_load(b.q + 8 * j);
        for (int r = 0; r < NR; ++r) {
          const v128_t p = wasm_i32x4_dot_i16x8(wv[r][j], av);
          s[r] = j == 0 ? p : wasm_i32x4_add(s[r], p);
        }
      }
      if constexpr (W::kLayout == Layout::kNibblePairs) {
        const v128_t offset = wasm_v128_load(b.offset);
        for (int r = 0; r < NR; ++r) s[r] = wasm_i32x4_sub(s[r], offset);
      }
      for (int r = 0; r < NR; ++r)
        acc[r][t] = wasm_f32x4_add(acc[r][t], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(s[r]), wasm_f32x4_splat(dw[r] * b.d)));
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) out[t * out_stride + r] = hsum_f32x4(acc[r][t]);
}

template <class W>
struct Tiles {
  template <int NR, int NT>
  struct Tile {
    static void run(const uint8_t* w, int64_t rb, const uint8_t* act, int64_t as, int64_t n, float* out, int64_t os) {
      tile<W, NR, NT>(w, rb, act, as, n, out, os);
    }
  };
};

// Decode takes one row a pass; prompt tiles two, which share each
// activation vector (smollm2-135m pp128 under Node, 2 threads: q4_0 +5-21%,
// q8_0 +10-40% over one row at a time with a runtime token count; three rows
// were no faster). Two decode rows: q8_0 tg32 71.3 -> 44.2 tokens/s, q4_0
// 65.5 -> 66.4 (Zen 3, 1 thread, taking turns), so one it is.
template <class W>
using Dispatch = TileDispatch<Tiles<W>::template Tile, 1, 2>;

template <class W>
void fill(RowKernel& out) {
  out.act_bytes = act_bytes<W::kLayout>;
  out.encode = encode<W::kLayout>;
  out.dot_rows = Dispatch<W>::decode;
  out.dot_tile = Dispatch<W>::tile;
}

}  // namespace

bool row_kernel_for(DType type, RowKernel& out) {
  if (type != DType::kQ8_0 && type != DType::kQ4_0) return false;
  out = RowKernel{};
  out.tile_tokens = 4;
  if (type == DType::kQ8_0) fill<Q8_0Weights>(out);
  else fill<Q4_0Weights>(out);
  return true;
}

}  // namespace osprey::kernels::wasm
