// AVX-512 VNNI kernels for decode: several weight rows against one row of
// activations. Built with -mavx512f/bw/vl/vnni/vbmi; only called after the
// CPU was probed.
//
// Activations use a planar encoding ("q8 planar"): all int8 values first,
// then one float scale and one int32 sum per 32 values. The values and scales
// are exactly those of Q8_0 (scale rounded through fp16), so results agree
// with the scalar reference up to float summation order; the layout lets one
// 512-bit load fetch two blocks and keeps the sums ready for the offsets.
//
// vpdpbusd multiplies unsigned by signed bytes, so signed weights are made
// unsigned with an offset (q4_0: q in 0..15 stands for q - 8; q8_0: w ^ 0x80
// is w + 128) and the offset times the activation sum is subtracted.
// GCC 12 reports the _mm512_undefined_* operands inside its own intrinsics
// as uninitialized; they are fully overwritten. The pragmas precede the header.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>

#include "kernels/dispatch.h"
#include "kernels/planar_act.h"
#include "kernels/tile_dispatch.h"
#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/avx512_util.h"
#include "quant/blocks.h"
#include "quant/quant_util.h"
#include "core/fp16.h"

namespace osprey::kernels::avx512 {

using namespace osprey::quant;

namespace {

using Planar = PlanarQ8;

// Two q4_0 blocks are 36 bytes: d0 (0-1), nibbles (2-17), d1 (18-19), nibbles (20-35).
// kNibbles places their bytes as [block0 low | block0 high | block1 low |
// block1 high]; kShift then moves the high-nibble words down by 4; kScales
// gathers the halves [d0 x8 | d1 x8].
alignas(64) const uint8_t kNibbles[64] = {
    2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 2,  3,  4,  5,  6,  7,
    8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    32, 33, 34, 35, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35};
alignas(64) const uint16_t kShift[32] = {0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4,
                                         0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4};
alignas(64) const uint8_t kScales[64] = {0,  1,  0,  1,  0,  1,  0,  1,  0,  1,  0,  1,  0,  1,  0,  1,
                                         18, 19, 18, 19, 18, 19, 18, 19, 18, 19, 18, 19, 18, 19, 18, 19};

// Q4_0: levels 0..15 stand for q - 8, so 8 * sum(a) is subtracted per lane.
struct Q4_0Format {
  static constexpr int kOffsetShift = 3;
  static constexpr int64_t kBlockBytes = sizeof(BlockQ4_0);
  __m512i nib_idx = _mm512_load_si512(kNibbles);
  __m512i shift = _mm512_load_si512(kShift);
  __m512i scale_idx = _mm512_load_si512(kScales);
  __m512i low4 = _mm512_set1_epi8(0x0F);

  // Blocks i and i+1 of a row: the 64 unsigned levels in activation order and
  // the scales [d_i x8 | d_i+1 x8]. `full`: 64 bytes from block i stay inside
  // the row, so a plain load is safe; otherwise a masked load, which never
  // touches masked bytes.
  void load_pair(const uint8_t* row, int64_t i, bool full, __m512i& q, __m512& dw) const {
    const uint8_t* blk = row + i * kBlockBytes;
    constexpr __mmask64 kTwoBlocks = (1ull << 36) - 1;
    const __m512i raw = full ? _mm512_loadu_si512(blk) : _mm512_maskz_loadu_epi8(kTwoBlocks, blk);
    q = _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutexvar_epi8(nib_idx, raw), shift), low4);
    dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi8(scale_idx, raw)));
  }
  // An odd last block, in scalar code: (sum q*a - offset) * scale.
  static float tail(const uint8_t* row, int64_t i, const Planar& a) {
    const auto* b = reinterpret_cast<const BlockQ4_0*>(row) + i;
    int32_t s = 0;
    for (int j = 0; j < kQK / 2; ++j) s += (b->qs[j] & 0x0F) * a.q[i * kQK + j] + (b->qs[j] >> 4) * a.q[i * kQK + j + 16];
    return (s - 8 * a.sum[i]) * fp16_to_fp32(b->d) * a.d[i];
  }
};

// Q8_0: signed weights become unsigned by flipping the top bit (w + 128), so
// 128 * sum(a) is subtracted per lane.
struct Q8_0Format {
  static constexpr int kOffsetShift = 7;
  __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));

  void load_pair(const uint8_t* row, int64_t i, bool, __m512i& q, __m512& dw) const {
    const auto* b = reinterpret_cast<const BlockQ8_0*>(row) + i;
    q = _mm512_xor_si512(
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].qs))),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].qs)), 1),
        flip);
    dw = pair(_cvtsh_ss(b[0].d), _cvtsh_ss(b[1].d));
  }
  static float tail(const uint8_t* row, int64_t i, const Planar& a) {
    const auto* b = reinterpret_cast<const BlockQ8_0*>(row) + i;
    int32_t s = 0;
    for (int j = 0; j < kQK; ++j) s += b->qs[j] * a.q[i * kQK + j];
    return s * fp16_to_fp32(b->d) * a.d[i];
  }
};

// NR rows x NT tokens of a 32-element-block format, fixed at compile time so
// the accumulators stay in registers. Each weight pair is unpacked once and
// used for every token; each activation pair is loaded once per NR rows.
// Decode runs it with NT = 1.
template <typename Format, int NR, int NT>
void block32_tile(const uint8_t* w, int64_t row_bytes, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                  int64_t out_stride) {
  const Format format;
  const int64_t nb = n / kQK;
  const int64_t block_bytes = row_bytes / nb;
  Planar a[NT];
  for (int t = 0; t < NT; ++t) a[t] = Planar(act + t * act_stride, n);
  __m512 acc[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    __m512i av[NT], offset[NT];
    __m512 da[NT];
    for (int t = 0; t < NT; ++t) {
      av[t] = _mm512_loadu_si512(a[t].q + i * kQK);
      offset[t] = lane_sums(av[t], Format::kOffsetShift);
      da[t] = pair_scales(a[t].d, i);
    }
    const bool full = i * block_bytes + 64 <= row_bytes;
    for (int r = 0; r < NR; ++r) {
      const uint8_t* row = w + r * row_bytes;
      // Each row is its own stream; asking for data ahead keeps enough
      // requests in flight for DRAM bandwidth rather than latency to rule.
      _mm_prefetch(reinterpret_cast<const char*>(row) + i * block_bytes + kPrefetchBytes, _MM_HINT_T0);
      __m512i q;
      __m512 dw;
      format.load_pair(row, i, full, q, dw);
      for (int t = 0; t < NT; ++t) {
        const __m512i dot = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, av[t]), offset[t]);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, da[t]), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) {
      const float tail = i < nb ? Format::tail(w + r * row_bytes, i, a[t]) : 0.0f;
      out[t * out_stride + r] = _mm512_reduce_add_ps(acc[r][t]) + tail;
    }
}

template <int NR, int NT>
struct Q4_0Tile {
  static void run(const uint8_t* w, int64_t rb, const uint8_t* act, int64_t as, int64_t n, float* out, int64_t os) {
    block32_tile<Q4_0Format, NR, NT>(w, rb, act, as, n, out, os);
  }
};
template <int NR, int NT>
struct Q8_0Tile {
  static void run(const uint8_t* w, int64_t rb, const uint8_t* act, int64_t as, int64_t n, float* out, int64_t os) {
    block32_tile<Q8_0Format, NR, NT>(w, rb, act, as, n, out, os);
  }
};

}  // namespace

bool row_kernel_for_kquant(DType type, RowKernel& out);  // gemv_kquants_avx512.cpp
bool row_kernel_for_float(DType type, RowKernel& out);   // gemm_float_avx512.cpp

bool row_kernel_for(DType type, RowKernel& out) {
  if (type == DType::kMXFP4) return mxfp4_row_kernel(out);
  if (row_kernel_for_kquant(type, out) || row_kernel_for_float(type, out)) return true;
  if (type != DType::kQ4_0 && type != DType::kQ8_0) return false;
  out = RowKernel{};
  out.act_bytes = planar_q8_bytes;
  out.encode = encode_planar_q8;
  if (type == DType::kQ4_0) {
    out.dot_rows = TileDispatch<Q4_0Tile>::decode;
    out.dot_tile = TileDispatch<Q4_0Tile>::tile;
  } else {
    out.dot_rows = TileDispatch<Q8_0Tile>::decode;
    out.dot_tile = TileDispatch<Q8_0Tile>::tile;
  }
  return true;
}

}  // namespace osprey::kernels::avx512
