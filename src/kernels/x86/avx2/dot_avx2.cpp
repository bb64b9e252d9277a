// AVX2 + FMA + F16C dot products of weight rows with encoded activations.
// Built with -mavx2 -mfma -mf16c; only called after the CPU was probed.
// Each must agree with the scalar reference in src/quant/ up to float
// summation order (tests/kernels/dot_test.cpp).
#include <immintrin.h>

#include <cmath>

#include "core/fp16.h"
#include "kernels/dispatch.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/avx2_util.h"
#include "quant/blocks.h"
#include "quant/k_quant_common.h"

namespace osprey::kernels::avx2 {

using namespace osprey::quant;

namespace {

// One F16C instruction; the table lookup of the scalar code would touch L2
// for every block.
inline float half(uint16_t h) { return _cvtsh_ss(h); }

// Eight int32 sums of products of 32 signed bytes pairs. maddubs needs an
// unsigned left operand, so the sign of x moves onto y.
inline __m256i dot_i8(__m256i x, __m256i y) {
  const __m256i ax = _mm256_sign_epi8(x, x);
  const __m256i sy = _mm256_sign_epi8(y, x);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

// 32 nibbles of 16 bytes: low nibbles in bytes 0-15, high nibbles in 16-31.
inline __m256i unpack_nibbles(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Byte j is 0xFF where bit j of the 32 qh bits is set: each byte first takes the
// qh byte that holds its bit (byte j/8), then keeps only bit j%8.
inline __m256i bits_to_bytes(const uint8_t* qh_bytes) {
  uint32_t bits;
  __builtin_memcpy(&bits, qh_bytes, 4);
  const __m256i which = _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), which);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// The 32 five-bit levels (0..31) of a Q5_0 or Q5_1 block, element order.
inline __m256i q5_levels(const uint8_t* qs, const uint8_t* qh) {
  return _mm256_or_si256(unpack_nibbles(qs), _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10)));
}

// Eight int32 sums of products of 32 unsigned levels (< 64) with signed bytes.
inline __m256i dot_u8(__m256i levels, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(levels, y), _mm256_set1_epi16(1));
}

// Q8_0, Q4_0 and Q5_0 against Q8_0: signed levels (Q4_0 and Q5_0 less their offset).
template <typename Block, __m256i (*Signed)(const Block&)>
float dot_centered_blocks(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const Block*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK; ++i) {
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs));
    const __m256 d = _mm256_set1_ps(half(x[i].d) * half(y[i].d));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(Signed(x[i]), qy)), acc);
  }
  return hsum(acc);
}

// MXFP4: the codes looked up in the (doubled, integer) E2M1 table, 16 at a
// time per lane, then the Q8_0 block dot; the scale is a power of two.
float dot_mxfp4(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockMXFP4*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const __m256i table =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kMxfp4Levels)));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK; ++i) {
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs));
    const __m256i levels = _mm256_shuffle_epi8(table, unpack_nibbles(x[i].qs));
    const __m256 d = _mm256_set1_ps(std::ldexp(1.0f, static_cast<int>(x[i].e) - 128) * half(y[i].d));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(levels, qy)), acc);
  }
  return hsum(acc);
}

inline __m256i q8_0_signed(const BlockQ8_0& b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)); }
inline __m256i q4_0_signed(const BlockQ4_0& b) { return _mm256_sub_epi8(unpack_nibbles(b.qs), _mm256_set1_epi8(8)); }
inline __m256i q5_0_signed(const BlockQ5_0& b) {
  return _mm256_sub_epi8(q5_levels(b.qs, b.qh), _mm256_set1_epi8(16));
}

// Q4_1 and Q5_1 against Q8_1: sum (d q + m) dy qy = d dy sum q qy + m s,
// where s = dy sum qy comes with the activation block.
template <typename Block, __m256i (*Levels)(const Block&)>
float dot_offset_blocks(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const Block*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(a);
  __m256 acc = _mm256_setzero_ps();
  float offset = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs));
    const __m256 d = _mm256_set1_ps(half(x[i].d) * half(y[i].d));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8(Levels(x[i]), qy)), acc);
    offset += half(x[i].m) * half(y[i].s);
  }
  return hsum(acc) + offset;
}

inline __m256i q4_1_levels(const BlockQ4_1& b) { return unpack_nibbles(b.qs); }
inline __m256i q5_1_levels(const BlockQ5_1& b) { return q5_levels(b.qs, b.qh); }

// The unsigned levels of chunk c of a Q4_K or Q5_K super-block: elements
// 64c..64c+31 in lo (the low nibbles), the next 32 in hi (the high ones).
inline void nibbles_of_chunk(const uint8_t* qs, int c, __m256i& lo, __m256i& hi) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
  lo = _mm256_and_si256(q, low4);
  hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
}

struct Q4KLevels {
  explicit Q4KLevels(const BlockQ4_K& b) : qs(b.qs) {}
  void chunk(int c, __m256i& lo, __m256i& hi) const { nibbles_of_chunk(qs, c, lo, hi); }
  const uint8_t* qs;
};

// Q5_K adds a fifth bit: for chunk c, bit 2c of qh[l] belongs to element
// 64c+l and bit 2c+1 to element 64c+32+l (src/quant/q5_k.cpp). Chunks are
// taken in order, and qh moves down two bits after each.
struct Q5KLevels {
  explicit Q5KLevels(const BlockQ5_K& b) : qs(b.qs), hb(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh))) {}
  void chunk(int c, __m256i& lo, __m256i& hi) {
    nibbles_of_chunk(qs, c, lo, hi);
    // Bits 0 and 1 of each byte go to bit 4; what a 16-bit shift carries
    // across bytes is masked off.
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), bit4));
    hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), bit4));
    hb = _mm256_srli_epi16(hb, 2);
  }
  const uint8_t* qs;
  __m256i hb;
};

// Q4_K and Q5_K: eight sub-blocks of 32 with 6-bit scales and mins,
// x = d sc q - dmin m; the min term comes from the activations' block sums.
template <typename Block, typename Levels>
float dot_scale_min_k(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const Block*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int sc[8], mn[8];
    for (int j = 0; j < 8; ++j) k_scale_min(j, x[i].scales, sc[j], mn[j]);
    int32_t summ = 0;
    for (int j = 0; j < 8; ++j) summ += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    __m256i sumi = _mm256_setzero_si256();
    Levels levels(x[i]);
    for (int c = 0; c < 4; ++c) {
      __m256i lo, hi;
      levels.chunk(c, lo, hi);
      const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + 64 * c));
      const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + 64 * c + 32));
      // Levels are unsigned and below 32, so maddubs applies directly: 31*127*2 fits in int16.
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), _mm256_set1_epi16(static_cast<int16_t>(sc[2 * c])));
      const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), _mm256_set1_epi16(static_cast<int16_t>(sc[2 * c + 1])));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
    }
    sum += y[i].d * (half(x[i].d) * hsum_i32(sumi) - half(x[i].dmin) * summ);
  }
  return sum;
}

// Scales of a 32-element chunk whose first 16 elements use sub-block scale
// lo and the next 16 use hi, as madd's int16 factors.
inline __m256i pair_scales(int lo, int hi) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(hi)), _mm_set1_epi16(static_cast<int16_t>(lo)));
}

// The factors for chunk j of a half of 8 sub-blocks (its scales, as int16):
// the chunk's first 16 elements use scales[2j], the next 16 scales[2j+1].
inline __m256i chunk_scales(const int16_t* scales, int j) { return pair_scales(scales[2 * j], scales[2 * j + 1]); }

// Q2_K: 2-bit levels, per sub-block 4-bit scale and min (src/quant/q2_k.cpp).
// Chunk (h, j) holds elements 128h + 32j + l in bits 2j of qs[32h + l]. The
// min term is sum_s min_s * bsums[s], one madd over the sixteen sub-blocks.
float dot_q2_k(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ2_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i three = _mm256_set1_epi8(3);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales));
    alignas(32) int16_t sc[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sc), _mm256_cvtepu8_epi16(_mm_and_si128(packed, low4)));
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low4));
    const __m256i summ = _mm256_madd_epi16(mins, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums)));
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * h));
      for (int j = 0; j < 4; ++j) {
        const __m256i yk = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + 128 * h + 32 * j));
        const __m256i levels = _mm256_and_si256(q, three);  // bits a 16-bit shift carries in are masked off
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(levels, yk), chunk_scales(sc + 8 * h, j)));
        q = _mm256_srli_epi16(q, 2);
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * half(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    acc = _mm256_fnmadd_ps(_mm256_set1_ps(y[i].d * half(x[i].dmin)), _mm256_cvtepi32_ps(summ), acc);
  }
  return hsum(acc);
}

// Q3_K's sixteen 6-bit scales less 32 as bytes (see q3k_scale): low nibbles
// from bytes 0-7 (low halves for sub-blocks 0-7, high halves for 8-15), top
// bits from bytes 8-11, where 32-bit lane k wants them shifted down by 2k.
inline __m128i q3k_scales(const uint8_t* packed) {
  const __m128i low4 = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(packed));
  const __m128i nibbles = _mm_unpacklo_epi64(_mm_and_si128(lo, low4), _mm_and_si128(_mm_srli_epi16(lo, 4), low4));
  uint32_t top;
  __builtin_memcpy(&top, packed + 8, 4);
  const __m128i high = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(static_cast<int>(top)), _mm_setr_epi32(0, 2, 4, 6)),
                                     _mm_set1_epi8(3));
  return _mm_sub_epi8(_mm_or_si128(nibbles, _mm_slli_epi16(high, 4)), _mm_set1_epi8(32));
}

// Q3_K: the 2-bit planes of Q2_K plus a third bit from hmask; the level is
// (low | bit << 2) - 4, and the -4 comes from the block sums. The chunks'
// hmask bits are bits 0..7 of hmask[l] in chunk order.
float dot_q3_k(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ3_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const __m256i scales = _mm256_cvtepi8_epi16(q3k_scales(x[i].scales));
    alignas(32) int16_t sc[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sc), scales);
    // 4 * sum_s sc_s * bsums[s], subtracted from the start.
    __m256i sumi = _mm256_sub_epi32(
        _mm256_setzero_si256(),
        _mm256_slli_epi32(_mm256_madd_epi16(scales, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums))), 2));
    __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].hmask));
    for (int h = 0; h < 2; ++h) {
      __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * h));
      for (int j = 0; j < 4; ++j) {
        const __m256i yk = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + 128 * h + 32 * j));
        const __m256i levels = _mm256_or_si256(_mm256_and_si256(q, three), _mm256_slli_epi16(_mm256_and_si256(hb, one), 2));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(levels, yk), chunk_scales(sc + 8 * h, j)));
        q = _mm256_srli_epi16(q, 2);
        hb = _mm256_srli_epi16(hb, 1);
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * half(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc);
}

float dot_q6_k(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i two = _mm256_set1_epi8(3);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    // sum (q - 32) * a = sum q * a - 32 * sum a, the last term from the block sums.
    int32_t bias = 0;
    for (int s = 0; s < 16; ++s) bias += x[i].scales[s] * y[i].bsums[s];
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x[i].ql + 64 * h;
      const uint8_t* qh = x[i].qh + 32 * h;
      const int8_t* sc = x[i].scales + 8 * h;
      const int8_t* ya = y[i].qs + 128 * h;
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(hb, two), 4));
      q[1] = _mm256_or_si256(_mm256_and_si256(l1, low4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), two), 4));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), two), 4));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), two), 4));
      for (int k = 0; k < 4; ++k) {
        const __m256i yk = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ya + 32 * k));
        // Elements 32k..32k+15 use scale 2k, the next 16 use 2k+1.
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], yk), pair_scales(sc[2 * k], sc[2 * k + 1])));
      }
    }
    sum += half(x[i].d) * y[i].d * (hsum_i32(sumi) - 32 * bias);
  }
  return sum;
}

float dot_f16(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const uint16_t*>(a);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    const __m256 y0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y + i)));
    const __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i + 8)));
    const __m256 y1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y + i + 8)));
    acc0 = _mm256_fmadd_ps(x0, y0, acc0);
    acc1 = _mm256_fmadd_ps(x1, y1, acc1);
  }
  float sum = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) sum += half(x[i]) * half(y[i]);
  return sum;
}

}  // namespace

float dot_f32(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const float*>(w);
  const auto* y = static_cast<const float*>(a);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), acc1);
  }
  float sum = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

DotFn dot_for(DType type) {
  switch (type) {
    case DType::kQ8_0: return dot_centered_blocks<BlockQ8_0, q8_0_signed>;
    case DType::kQ4_0: return dot_centered_blocks<BlockQ4_0, q4_0_signed>;
    case DType::kMXFP4: return dot_mxfp4;
    case DType::kQ4_1: return dot_offset_blocks<BlockQ4_1, q4_1_levels>;
    case DType::kQ5_0: return dot_centered_blocks<BlockQ5_0, q5_0_signed>;
    case DType::kQ5_1: return dot_offset_blocks<BlockQ5_1, q5_1_levels>;
    case DType::kQ2_K: return dot_q2_k;
    case DType::kQ3_K: return dot_q3_k;
    case DType::kQ4_K: return dot_scale_min_k<BlockQ4_K, Q4KLevels>;
    case DType::kQ5_K: return dot_scale_min_k<BlockQ5_K, Q5KLevels>;
    case DType::kQ6_K: return dot_q6_k;
    case DType::kF16: return dot_f16;
    case DType::kF32: return dot_f32;
    default: return nullptr;
  }
}

}  // namespace osprey::kernels::avx2
