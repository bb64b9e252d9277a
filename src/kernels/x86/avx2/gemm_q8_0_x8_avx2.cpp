// AVX2 Q8_0 over eight interleaved rows, against q8 planar activations.
// Built with -mavx2 -mfma -mf16c; only called after the CPU was probed.
//
// As with Q4_0 (gemm_q4_0_x8_avx2.cpp), the eight lanes of a register are
// eight rows and the activations are broadcast four bytes at a time, so one
// conversion and one FMA per half block serve eight rows. The weights are
// signed here: maddubs wants an unsigned left operand, so each weight vector
// is made absolute once per block and its sign moved onto the activations,
// and every maddubs is widened on its own (two products of 127 * 127 already
// fill an int16). A block's two halves are summed as integers and scaled
// once (the first half's sums wait in registers, or on the stack, while the
// second half's weights are loaded): one conversion and FMA a block instead
// of two took gemm64/q8_0 from 204 to 220 G/s and TinyLlama Q8_0 pp512 from
// 99.5-100.5 to 104.5-105.9 tokens/s (OSPREY_ISA=avx2, Zen 3, 2 threads).
//
// The layout is repack_rows's (kernels/repack.h), four blocks to a chunk:
// block b's vector c holds
// elements 4c..4c+3 of each row's block.
#include <immintrin.h>

#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/planar_act.h"
#include "kernels/repack.h"
#include "kernels/x86/avx2/avx2_util.h"
#include "kernels/x86/avx2/x8_dispatch.h"
#include "quant/blocks.h"

namespace osprey::kernels::avx2 {

using namespace osprey::quant;

void encode_planar_q8(const float* x, void* act, int64_t n);  // encode_avx2.cpp

namespace {

constexpr int kRows = kX8Rows;

struct Q8_0X8 {
  static constexpr int kRows = kX8Rows;
  // Eight tokens a tile: more than four pays for the weights' sign step (`osprey_kernel_bench
  // gemm64/q8_0` under OSPREY_ISA=avx2, Zen 5: 4 -> 6 tokens +7%), and eight, level with six in
  // gemm64, read the weights once for the serving case of eight sequences at a token each (Zen 3,
  // TinyLlama Q8_0, `bench --batch-seqs 8`: 82.5-82.9 -> 85.4-88.4 tokens/s; pp512 102.6-106.1 ->
  // 105.8-108.2).
  static constexpr int kTileTokens = 8;
  template <int NT>
  static void tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out, int64_t out_stride);
};

template <int NT>
void Q8_0X8::tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                  int64_t out_stride) {
  const int64_t nb = n / kQK;
  PlanarQ8 a[NT];
  for (int t = 0; t < NT; ++t) a[t] = PlanarQ8(act + t * act_stride, n);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for_each_group_block<kRows, 32>(g, nb, kPrefetchBytes, [&](int64_t b, const uint16_t* scales, const uint8_t* p) {
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales)));
    __m256i first[NT] = {};  // written by the first half before the second reads it
    for (int half = 0; half < 2; ++half) {
      __m256i w[4], aw[4];
      for (int c = 0; c < 4; ++c) {
        w[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * (4 * half + c)));
        aw[c] = _mm256_sign_epi8(w[c], w[c]);
      }
      for (int t = 0; t < NT; ++t) {
        const int8_t* q = a[t].q + b * kQK + 16 * half;
        __m256i s = half == 0 ? _mm256_setzero_si256() : first[t];
        for (int c = 0; c < 4; ++c) {
          const __m256i y = _mm256_sign_epi8(bcast4(q + 4 * c), w[c]);
          s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(aw[c], y), ones));
        }
        if (half == 0) first[t] = s;
        else acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(a[t].d[b])), acc[t]);
      }
    }
  });
  for (int t = 0; t < NT; ++t) _mm256_storeu_ps(out + t * out_stride, acc[t]);
}

void repack_x8(const uint8_t* src, uint8_t* dst, int64_t n) { repack_rows(src, dst, n / kQK, 32, kRows); }
void unpack_x8(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n) { unpack_rows(group, row, dst, n / kQK, 32, kRows); }

}  // namespace

bool interleaved_q8_0_kernel_for(DType type, RowKernel& out) {
  if (type != DType::kQ8_0) return false;
  out = group_row_kernel<Q8_0X8>(planar_q8_bytes, avx2::encode_planar_q8, repack_x8, unpack_x8);
  return true;
}

}  // namespace osprey::kernels::avx2
