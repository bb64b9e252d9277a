// AVX2 Q4_0 over eight rows interleaved, against q8 planar activations.
// Built with -mavx2 -mfma -mf16c; only called after the CPU was probed.
//
// Why: in one row's layout every 32-element block needs its own float
// scaling per token (an int32 reduction, a conversion and an FMA for 32
// products), and on AVX2 without VNNI that overhead, not DRAM, bounds decode
// and prefill. With eight rows side by side, the eight lanes of one register
// are eight rows: the activations are broadcast four bytes at a time, eight
// maddubs fill one register's int16 sums for all eight rows, and one
// reduction, conversion and FMA then serve eight rows at once.
//
// The layout is repack_rows's (kernels/repack.h), four blocks to a chunk:
// block b's 32-byte vector c holds
// bytes 4c..4c+3 of each row's 16 nibble bytes, so its low nibbles are
// elements 4c..4c+3 of each row and its high nibbles elements 16+4c..16+4c+3.
#include <immintrin.h>

#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/planar_act.h"
#include "kernels/repack.h"
#include "kernels/x86/avx2/x8_dispatch.h"
#include "kernels/x86/avx2/avx2_util.h"
#include "quant/blocks.h"

namespace osprey::kernels::avx2 {

using namespace osprey::quant;

void encode_planar_q8(const float* x, void* act, int64_t n);  // encode_avx2.cpp

namespace {

constexpr int kRows = kX8Rows;
constexpr int64_t kChunkBytes = 32;

struct Q4_0X8 {
  static constexpr int kRows = kX8Rows;
  template <int NT>
  static void tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out, int64_t out_stride);
};

template <int NT>
void Q4_0X8::tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                  int64_t out_stride) {
  const int64_t nb = n / kQK;
  PlanarQ8 a[NT];
  for (int t = 0; t < NT; ++t) a[t] = PlanarQ8(act + t * act_stride, n);
  const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for_each_group_block<kRows, 16>(g, nb, kPrefetchBytes, [&](int64_t b, const uint16_t* scales, const uint8_t* p) {
    __m256i w[8];
    for (int c = 0; c < 4; ++c) {
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + c * kChunkBytes));
      w[c] = _mm256_and_si256(raw, low4);
      w[4 + c] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales)));
    for (int t = 0; t < NT; ++t) {
      const int8_t* q = a[t].q + b * kQK;
      // Lanes 2r, 2r+1 are row r's. Levels 0..15 times |a| <= 127, two per
      // lane per maddubs: eight of them stay below 2^15.
      __m256i s = _mm256_maddubs_epi16(w[0], bcast4(q));
      for (int c = 1; c < 4; ++c) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(w[c], bcast4(q + 4 * c)));
      for (int c = 0; c < 4; ++c) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(w[4 + c], bcast4(q + 16 + 4 * c)));
      // The levels stand for q - 8: subtract 8 * sum(a) of the block.
      const __m256i d32 = _mm256_sub_epi32(_mm256_madd_epi16(s, ones), _mm256_set1_epi32(8 * a[t].sum[b]));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32), _mm256_mul_ps(dw, _mm256_set1_ps(a[t].d[b])), acc[t]);
    }
  });
  for (int t = 0; t < NT; ++t) _mm256_storeu_ps(out + t * out_stride, acc[t]);
}

void repack_x8(const uint8_t* src, uint8_t* dst, int64_t n) { repack_rows(src, dst, n / kQK, 16, kRows); }
void unpack_x8(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n) { unpack_rows(group, row, dst, n / kQK, 16, kRows); }

}  // namespace

bool interleaved_kquant_kernel_for(DType type, RowKernel& out);  // gemm_q4_k_q5_k_x8_avx2.cpp
bool interleaved_q6_k_kernel_for(DType type, RowKernel& out);    // gemm_q6_k_x8_avx2.cpp
bool interleaved_q8_0_kernel_for(DType type, RowKernel& out);    // gemm_q8_0_x8_avx2.cpp
bool interleaved_float_kernel_for(DType type, RowKernel& out);   // gemm_float_x32_avx2.cpp: F16, BF16 in 32s

bool interleaved_row_kernel_for(DType type, RowKernel& out) {
  if (interleaved_kquant_kernel_for(type, out) || interleaved_q6_k_kernel_for(type, out) ||
      interleaved_q8_0_kernel_for(type, out) || interleaved_float_kernel_for(type, out))
    return true;
  if (type != DType::kQ4_0) return false;
  out = group_row_kernel<Q4_0X8>(planar_q8_bytes, avx2::encode_planar_q8, repack_x8, unpack_x8);
  return true;
}

}  // namespace osprey::kernels::avx2
