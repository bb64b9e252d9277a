// BF16 matrices on CPUs with AVX512_BF16 (Zen 4 and later, Sapphire Rapids,
// Cooper Lake): vdpbf16ps multiplies two bf16 pairs per 32-bit lane and adds
// both products, so it does twice the work of a 16-lane FMA and needs no
// conversion of the weights. Built with the AVX-512 and AVX512_BF16 flags;
// only called after the CPU was probed.
//
// The activations are rounded to bf16 (as for every BF16 kernel), so each
// product is exact; only where the sums round differs from the fp32 FMA
// kernels. Rows are interleaved in groups of 32 by pairs of elements: one
// 64-byte line holds elements 2p and 2p+1 of 16 rows, one pair per lane, so a
// broadcast activation pair meets 16 rows in one instruction. A group against
// 12 tokens does 24 of them per 128 bytes of weights. Every output is one
// chain over the pairs in order, so decode and prompt tiles agree bit for bit.
// GCC 12 reports the _mm512_undefined_* operands inside its own intrinsics
// (conversions, shifts) as uninitialized; they are fully overwritten. The
// pragmas precede the header, where those inline functions are defined.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/group_dispatch.h"
#include "kernels/x86/avx2/float_encode.h"
#include "kernels/x86/avx512/avx512_util.h"

namespace osprey::kernels::avx512 {

namespace {

constexpr int kRows = 32;

// Element k of row r: pair k / 2 holds 2 x 32 halves, row r's two at
// (k / 2 * 32 + r) * 2; an odd last element is 32 halves in row order.
int64_t packed_index(int64_t k, int64_t r, int64_t n) {
  return k < n / 2 * 2 ? (k / 2 * kRows + r) * 2 + k % 2 : n / 2 * 2 * kRows + r;
}

void repack(const uint8_t* src, uint8_t* dst, int64_t n) {
  const auto* in = reinterpret_cast<const uint16_t*>(src);
  auto* out = reinterpret_cast<uint16_t*>(dst);
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t k = 0; k < n; ++k) out[packed_index(k, r, n)] = in[r * n + k];
}

void unpack(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n) {
  const auto* in = reinterpret_cast<const uint16_t*>(group);
  auto* out = reinterpret_cast<uint16_t*>(dst);
  for (int64_t k = 0; k < n; ++k) out[k] = in[packed_index(k, row, n)];
}

// The activations: the row rounded to bf16, as 16-bit values. The buffer
// first takes the widened fp32 row (the shared encoder), which is then
// narrowed in place, front to back; each store lands below what is still to
// be read.
int64_t act_bytes(int64_t n) { return n * static_cast<int64_t>(sizeof(float)); }

void encode(const float* x, void* act, int64_t n) {
  avx2::encode_widened_bf16(x, act, n);
  auto* b = static_cast<uint8_t*>(act);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i v = _mm512_loadu_si512(b + 4 * i);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b + 2 * i), _mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16)));
  }
  for (; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, b + 4 * i, 4);
    const auto half = static_cast<uint16_t>(bits >> 16);  // exact: already rounded
    std::memcpy(b + 2 * i, &half, 2);
  }
}

struct Bf16PairsX32 {
  static constexpr int kRows = osprey::kernels::avx512::kRows;
  // 24 accumulators, the two weight vectors and a broadcast pair.
  static constexpr int kTileTokens = 12;

  template <int NT>
  static void tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                   int64_t out_stride) {
    const uint8_t* a[NT];
    for (int t = 0; t < NT; ++t) a[t] = act + t * act_stride;
    __m512 lo[NT], hi[NT];
    for (int t = 0; t < NT; ++t) lo[t] = hi[t] = _mm512_setzero_ps();
    const int64_t pairs = n / 2;
    const uint8_t* w = g;
    for (int64_t p = 0; p < pairs; ++p, w += 2 * 64) {
      _mm_prefetch(reinterpret_cast<const char*>(w) + kGroupPrefetchBytes, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w) + kGroupPrefetchBytes + 64, _MM_HINT_T0);
      const auto w0 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(w));
      const auto w1 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(w + 64));
      for (int t = 0; t < NT; ++t) {
        int32_t pair;
        std::memcpy(&pair, a[t] + 4 * p, 4);
        const auto av = reinterpret_cast<__m512bh>(_mm512_set1_epi32(pair));
        lo[t] = _mm512_dpbf16_ps(lo[t], w0, av);
        hi[t] = _mm512_dpbf16_ps(hi[t], w1, av);
      }
    }
    if (n % 2) {  // the odd last element, widened: an exact product, one FMA
      const auto* last = reinterpret_cast<const uint16_t*>(w);
      const __m512 w0 = load_bf16x16(last), w1 = load_bf16x16(last + 16);
      for (int t = 0; t < NT; ++t) {
        uint16_t h;
        std::memcpy(&h, a[t] + 2 * (n - 1), 2);
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        float x;
        std::memcpy(&x, &bits, 4);
        lo[t] = _mm512_fmadd_ps(w0, _mm512_set1_ps(x), lo[t]);
        hi[t] = _mm512_fmadd_ps(w1, _mm512_set1_ps(x), hi[t]);
      }
    }
    for (int t = 0; t < NT; ++t) {
      _mm512_storeu_ps(out + t * out_stride, lo[t]);
      _mm512_storeu_ps(out + t * out_stride + 16, hi[t]);
    }
  }
};

}  // namespace

RowKernel bf16_pairs_row_kernel() { return group_row_kernel<Bf16PairsX32>(act_bytes, encode, repack, unpack); }

}  // namespace osprey::kernels::avx512
