// AVX-512 VNNI kernels for Q4_0 and Q8_0 over sixteen rows interleaved,
// against q8 planar activations. Built with the AVX-512 flags; only called
// after the CPU was probed.
//
// Why: one 512-bit lane per row means one vpdpbusd does four multiply-adds
// for each of 16 rows with the same four activation bytes, broadcast from
// memory, and the per-block float scaling (conversion, scale product, FMA)
// then serves 16 rows at once. Nothing is shuffled in the inner loop: Q4_0's
// nibbles need one AND (low) or a shift and an AND (high); Q8_0's bytes were
// made unsigned (w + 128) once, at repack, as vpdpbusd's unsigned operand
// wants.
//
// The layout is repack_rows's with 16 rows (kernels/repack.h): chunks of two
// blocks, one line of their scales and then their payloads; block b's
// vector v (64 bytes) holds bytes 4v..4v+3 of each row's payload. For Q4_0
// vector v's low nibbles are elements 4v..4v+3 and its high nibbles elements
// 16+4v..16+4v+3; for Q8_0 vector v is elements 4v..4v+3. Either way the
// kernel sees eight vectors per block, vector k covering elements 4k..4k+3.
// GCC 12 reports the _mm512_undefined_* operands inside its own intrinsics
// (conversions, reductions) as uninitialized; they are fully overwritten. The
// pragmas precede the header, where those inline functions are defined.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/group_dispatch.h"
#include "kernels/planar_act.h"
#include "kernels/repack.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/avx512_util.h"
#include "quant/blocks.h"

namespace osprey::kernels::avx512 {

using namespace osprey::quant;

namespace {

constexpr int kGroupRows = 16;

// Q4_0: levels 0..15 stand for q - 8; four 64-byte vectors a block.
struct Q4_0Payload {
  static constexpr int64_t kPayloadBytes = 16;
  static constexpr int kOffset = 8;
  static constexpr uint8_t kFlip = 0;
  static void load(const uint8_t* p, __m512i w[8]) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    for (int v = 0; v < 4; ++v) {
      const __m512i raw = _mm512_loadu_si512(p + 64 * v);
      w[v] = _mm512_and_si512(raw, low4);
      w[4 + v] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
    }
  }
};

// Q8_0: stored as w + 128; eight 64-byte vectors a block.
struct Q8_0Payload {
  static constexpr int64_t kPayloadBytes = 32;
  static constexpr int kOffset = 128;
  static constexpr uint8_t kFlip = 0x80;
  static void load(const uint8_t* p, __m512i w[8]) {
    for (int v = 0; v < 8; ++v) w[v] = _mm512_loadu_si512(p + 64 * v);
  }
};

template <class Payload>
struct X16 {
  static constexpr int kRows = kGroupRows;
  static constexpr int64_t kBlockPayload = kRows * Payload::kPayloadBytes;

  template <int NT>
  static void tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                   int64_t out_stride) {
    const int64_t nb = n / kQK;
    PlanarQ8 a[NT];
    for (int t = 0; t < NT; ++t) a[t] = PlanarQ8(act + t * act_stride, n);
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
    for_each_group_block<kRows, Payload::kPayloadBytes>(g, nb, kGroupPrefetchBytes, [&](int64_t b, const uint16_t* scales,
                                                                                    const uint8_t* p) {
      __m512i w[8];
      Payload::load(p, w);
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales)));
      for (int t = 0; t < NT; ++t) {
        const int8_t* q = a[t].q + b * kQK;
        // Two chains, so that vpdpbusd's latency hides behind the other's.
        // The stored levels stand for w - offset: the first chain starts at
        // -offset * sum(a) of the block.
        __m512i s0 = _mm512_set1_epi32(-Payload::kOffset * a[t].sum[b]), s1 = _mm512_setzero_si512();
        for (int v = 0; v < 4; ++v) {
          s0 = _mm512_dpbusd_epi32(s0, w[v], bcast4(q + 4 * v));
          s1 = _mm512_dpbusd_epi32(s1, w[4 + v], bcast4(q + 16 + 4 * v));
        }
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)),
                                 _mm512_mul_ps(dw, _mm512_set1_ps(a[t].d[b])), acc[t]);
      }
    });
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(out + t * out_stride, acc[t]);
  }

  static void repack(const uint8_t* src, uint8_t* dst, int64_t n) {
    repack_rows(src, dst, n / kQK, Payload::kPayloadBytes, kRows, Payload::kFlip);
  }
  static void unpack(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n) {
    unpack_rows(group, row, dst, n / kQK, Payload::kPayloadBytes, kRows, Payload::kFlip);
  }
};

template <class Payload>
RowKernel x16_row_kernel() {
  using K = X16<Payload>;
  return group_row_kernel<K>(planar_q8_bytes, avx2::encode_planar_q8, K::repack, K::unpack);
}

}  // namespace

bool interleaved_kquant_row_kernel_for(DType type, RowKernel& out);  // gemm_kquants_x16_avx512.cpp
bool interleaved_float_row_kernel_for(DType type, RowKernel& out);  // gemm_float_x32_avx512.cpp
RowKernel bf16_pairs_row_kernel();  // gemm_bf16_x32_avx512bf16.cpp: only where the CPU has AVX512_BF16

bool interleaved_row_kernel_for(DType type, RowKernel& out) {
  if (interleaved_kquant_row_kernel_for(type, out)) return true;
  if (type == DType::kBF16 && cpu_features().avx512bf16) {
    out = bf16_pairs_row_kernel();
    return true;
  }
  if (interleaved_float_row_kernel_for(type, out)) return true;
  switch (type) {
    case DType::kQ4_0: out = x16_row_kernel<Q4_0Payload>(); return true;
    case DType::kQ8_0: out = x16_row_kernel<Q8_0Payload>(); return true;
    default: return false;
  }
}

}  // namespace osprey::kernels::avx512
