// AVX2 tiles over repacked Q4_0 and Q8_0 rows (kernels/repack.h: scales
// first, then the payloads, Q8_0's in pair order) against paired q8 planar
// activations (kernels/planar_act.h). Built with -mavx2 -mfma -mf16c.
//
// Why a layout of our own: with the file's 18- or 34-byte blocks, every block
// costs a scalar fp16 conversion and a broadcast, and a Q4_0 block fills only
// half a register. Scales first, eight scales convert in one instruction and
// two Q4_0 blocks fill one 256-bit load; on a Zen 3 core, where decode turned
// out to be bound by instructions rather than DRAM, that halves the work per
// weight.
//
// Lanes 0-3 of each product belong to the pair's first block and lanes 4-7
// to its second, so a pair's scale vector is [s0 x4 | s1 x4]. Only the sum
// of all lanes is used, which lets the Q4_0 offset (levels 0..15 stand for
// q - 8) be subtracted from any lanes: per block, 8 * d_w * d_a * sum(a).
#include <immintrin.h>

#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/planar_act.h"
#include "kernels/repack.h"
#include "kernels/tile_dispatch.h"
#include "kernels/x86/avx2/avx2_util.h"
#include "quant/blocks.h"

namespace osprey::kernels::avx2 {

using namespace osprey::quant;

void encode_planar_q8(const float* x, void* act, int64_t n);         // encode_avx2.cpp
void encode_planar_q8_paired(const float* x, void* act, int64_t n);  // encode_avx2.cpp

namespace {

// [s[2j] x4 | s[2j+1] x4] from eight per-block scales.
inline __m256 pair_scale(__m256 s, int j) {
  return _mm256_permutevar8x32_ps(s, _mm256_setr_epi32(2 * j, 2 * j, 2 * j, 2 * j, 2 * j + 1, 2 * j + 1, 2 * j + 1,
                                                       2 * j + 1));
}

// Q4_0: a pair's 32 payload bytes, low nibbles [b0 0..15 | b1 0..15] and
// high nibbles [b0 16..31 | b1 16..31]: the paired activation halves.
// Sums stay in int16 (2 * 2 * 15 * 127 < 32768) until one madd.
struct Q4_0Packed {
  static constexpr int64_t kPayload = 16;
  static constexpr bool kOffset = true;
  struct Weights {
    __m256i lo, hi;
  };
  static Weights load_pair(const uint8_t* p) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i raw = load32(p);
    return {_mm256_and_si256(raw, low4), _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4)};
  }
  static __m256i dot_pair(const Weights& w, __m256i a_lo, __m256i a_hi) {
    const __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(w.lo, a_lo), _mm256_maddubs_epi16(w.hi, a_hi));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
  }
  // An odd last block, in order: nibble j is element j (low) or j + 16 (high).
  static int32_t dot_single(const uint8_t* p, const int8_t* a) {
    int32_t s = 0;
    for (int j = 0; j < 16; ++j) s += (p[j] & 0x0F) * a[j] + (p[j] >> 4) * a[j + 16];
    return s;
  }
};

// Q8_0: signed weights; maddubs wants an unsigned left operand, so each
// weight half is made absolute once and its sign moved onto the activations.
struct Q8_0Packed {
  static constexpr int64_t kPayload = 32;
  static constexpr bool kOffset = false;
  struct Weights {
    __m256i lo, hi, abs_lo, abs_hi;
  };
  static Weights load_pair(const uint8_t* p) {
    const __m256i lo = load32(p), hi = load32(p + 32);
    return {lo, hi, _mm256_sign_epi8(lo, lo), _mm256_sign_epi8(hi, hi)};
  }
  static __m256i dot_pair(const Weights& w, __m256i a_lo, __m256i a_hi) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(w.abs_lo, _mm256_sign_epi8(a_lo, w.lo)), ones);
    const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(w.abs_hi, _mm256_sign_epi8(a_hi, w.hi)), ones);
    return _mm256_add_epi32(p0, p1);
  }
  static int32_t dot_single(const uint8_t* p, const int8_t* a) {
    int32_t s = 0;
    for (int j = 0; j < 32; ++j) s += static_cast<int8_t>(p[j]) * a[j];
    return s;
  }
};


template <typename Format, int NR, int NT>
void packed_tile(const uint8_t* w, int64_t row_bytes, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                 int64_t out_stride) {
  const int64_t nb = n / kQK;
  PlanarQ8 a[NT];
  for (int t = 0; t < NT; ++t) a[t] = PlanarQ8(act + t * act_stride, n);
  const uint8_t* payload[NR];
  const uint16_t* scale[NR];
  for (int r = 0; r < NR; ++r) {
    scale[r] = reinterpret_cast<const uint16_t*>(w + r * row_bytes);
    payload[r] = w + r * row_bytes + 2 * nb;
  }
  __m256 acc[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= nb; i += 8) {  // eight blocks: one conversion of their scales
    for (int r = 0; r < NR; ++r) {
      // The scale stream moves at 2 bytes a block, the payload's at kPayload.
      const char* p = reinterpret_cast<const char*>(payload[r] + i * Format::kPayload) + kPrefetchBytes;
      for (int64_t l = 0; l < 8 * Format::kPayload; l += 64) _mm_prefetch(p + l, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(scale[r] + i) + kPrefetchBytes * 2 / Format::kPayload, _MM_HINT_T0);
    }
    __m256 dw[NR];
    for (int r = 0; r < NR; ++r) dw[r] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scale[r] + i)));
    __m256 da[NT];
    for (int t = 0; t < NT; ++t) {
      da[t] = _mm256_loadu_ps(a[t].d + i);
      if constexpr (Format::kOffset) {
        const __m256 off = _mm256_mul_ps(
            da[t], _mm256_cvtepi32_ps(_mm256_slli_epi32(load32(a[t].sum + i), 3)));
        for (int r = 0; r < NR; ++r) acc[r][t] = _mm256_fnmadd_ps(dw[r], off, acc[r][t]);
      }
    }
    for (int j = 0; j < 4; ++j) {
      __m256i a_lo[NT], a_hi[NT];
      for (int t = 0; t < NT; ++t) {
        a_lo[t] = load32(a[t].q + (i + 2 * j) * kQK);
        a_hi[t] = load32(a[t].q + (i + 2 * j) * kQK + 32);
      }
      for (int r = 0; r < NR; ++r) {
        const typename Format::Weights wp = Format::load_pair(payload[r] + (i + 2 * j) * Format::kPayload);
        for (int t = 0; t < NT; ++t) {
          const __m256 s = pair_scale(_mm256_mul_ps(dw[r], da[t]), j);
          acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(Format::dot_pair(wp, a_lo[t], a_hi[t])), s, acc[r][t]);
        }
      }
    }
  }
  // Fewer than eight blocks left: pairs with scalar scales, then an odd one.
  float rest[NR][NT] = {};
  for (; i < nb; i += 2) {
    for (int r = 0; r < NR; ++r) {
      const float d0 = _cvtsh_ss(scale[r][i]);
      if (i + 1 == nb) {
        for (int t = 0; t < NT; ++t) {
          int32_t s = Format::dot_single(payload[r] + i * Format::kPayload, a[t].q + i * kQK);
          if constexpr (Format::kOffset) s -= 8 * a[t].sum[i];
          rest[r][t] += d0 * a[t].d[i] * static_cast<float>(s);
        }
        continue;
      }
      const float d1 = _cvtsh_ss(scale[r][i + 1]);
      const typename Format::Weights wp = Format::load_pair(payload[r] + i * Format::kPayload);
      for (int t = 0; t < NT; ++t) {
        const float s0 = d0 * a[t].d[i], s1 = d1 * a[t].d[i + 1];
        const __m256 s = _mm256_set_m128(_mm_set1_ps(s1), _mm_set1_ps(s0));
        const __m256i dot = Format::dot_pair(wp, load32(a[t].q + i * kQK), load32(a[t].q + i * kQK + 32));
        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), s, acc[r][t]);
        if constexpr (Format::kOffset) rest[r][t] -= 8.0f * (s0 * a[t].sum[i] + s1 * a[t].sum[i + 1]);
      }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) out[t * out_stride + r] = hsum(acc[r][t]) + rest[r][t];
}

template <int NR, int NT>
struct Q4_0PackedTile {
  static void run(const uint8_t* w, int64_t rb, const uint8_t* act, int64_t as, int64_t n, float* out, int64_t os) {
    packed_tile<Q4_0Packed, NR, NT>(w, rb, act, as, n, out, os);
  }
};
template <int NR, int NT>
struct Q8_0PackedTile {
  static void run(const uint8_t* w, int64_t rb, const uint8_t* act, int64_t as, int64_t n, float* out, int64_t os) {
    packed_tile<Q8_0Packed, NR, NT>(w, rb, act, as, n, out, os);
  }
};

void repack_q4_0(const uint8_t* src, uint8_t* dst, int64_t n) { repack_scales_first(src, dst, n / kQK, 16); }
void repack_q8_0(const uint8_t* src, uint8_t* dst, int64_t n) {
  repack_scales_first(src, dst, n / kQK, 32);
  pair_halves_q8(dst + 2 * (n / kQK), n / kQK);
}

void unpack_q4_0(const uint8_t* src, int64_t, uint8_t* dst, int64_t n) { unpack_scales_first(src, dst, n / kQK, 16); }
void unpack_q8_0(const uint8_t* src, int64_t, uint8_t* dst, int64_t n) {
  const int64_t nb = n / kQK;
  const uint8_t* payload = src + 2 * nb;
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* b = dst + i * sizeof(BlockQ8_0);
    std::memcpy(b, src + 2 * i, 2);
    if ((i & 1) == 0 && i + 1 == nb) {  // an odd last block stays in order
      std::memcpy(b + 2, payload + i * 32, 32);
      continue;
    }
    // Pair order [b0 0..15][b1 0..15][b0 16..31][b1 16..31].
    const uint8_t* pair = payload + (i & ~int64_t{1}) * 32 + (i & 1) * 16;
    std::memcpy(b + 2, pair, 16);
    std::memcpy(b + 18, pair + 32, 16);
  }
}

}  // namespace

bool packed_row_kernel_for(DType type, RowKernel& out) {
  if (type != DType::kQ4_0 && type != DType::kQ8_0) return false;
  out = RowKernel{};
  out.act_bytes = planar_q8_bytes;
  out.encode = avx2::encode_planar_q8_paired;
  if (type == DType::kQ4_0) {
    out.dot_rows = TileDispatch<Q4_0PackedTile, 2, 2>::decode;
    out.dot_tile = TileDispatch<Q4_0PackedTile, 2, 2>::tile;
    out.repack = repack_q4_0;
    out.unpack = unpack_q4_0;
  } else {
    out.dot_rows = TileDispatch<Q8_0PackedTile, 2, 2>::decode;
    out.dot_tile = TileDispatch<Q8_0PackedTile, 2, 2>::tile;
    out.repack = repack_q8_0;
    out.unpack = unpack_q8_0;
  }
  return true;
}

}  // namespace osprey::kernels::avx2
