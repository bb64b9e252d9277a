// AVX2 + FMA tiles for the 16-bit float formats F16 and BF16: NR weight rows
// against NT token rows (decode is NT = 1), through the tile shared with
// AVX-512 (x86/float_tile.h). Built with -mavx2 -mfma -mf16c;
// only called after the CPU was probed.
//
// The formats' contract rounds activations to the weight's type (their
// dot_type is F16 / BF16, as in llama.cpp). Here they are rounded once and
// stored widened back to fp32: the products are those of the reference, but
// the inner loop converts only the weights, and every token of a tile shares
// each converted weight vector.
#include <immintrin.h>

#include "kernels/dispatch.h"
#include "kernels/tile_dispatch.h"
#include "kernels/x86/float_tile.h"
#include "kernels/x86/avx2/avx2_util.h"
#include "kernels/x86/avx2/float_encode.h"
#include "kernels/x86/avx2/float_formats.h"

namespace osprey::kernels::avx2 {

namespace {

int64_t widened_bytes(int64_t n) { return n * static_cast<int64_t>(sizeof(float)); }

template <typename Format>
void encode_widened(const float* x, void* act, int64_t n) {
  auto* y = static_cast<float*>(act);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, Format::round8(_mm256_loadu_ps(x + i)));
  if (i < n) {  // the tail through a padded vector, so it rounds exactly as the rest
    alignas(32) float buf[8] = {};
    for (int64_t k = i; k < n; ++k) buf[k - i] = x[k];
    _mm256_store_ps(buf, Format::round8(_mm256_load_ps(buf)));
    for (int64_t k = i; k < n; ++k) y[k] = buf[k - i];
  }
}

}  // namespace

// Shared with the AVX-512 kernels (float_encode.h).
void encode_widened_f16(const float* x, void* act, int64_t n) { encode_widened<F16Format>(x, act, n); }
void encode_widened_bf16(const float* x, void* act, int64_t n) { encode_widened<BF16Format>(x, act, n); }

namespace {

// The level's vector operations for x86::float_tile.
struct Avx2Simd {
  using Reg = __m256;
  static constexpr int kWidth = 8;
  static constexpr int64_t kPrefetchBytes = avx2::kPrefetchBytes;
  static constexpr bool kDecodeReadsHalves = false, kPrefetchDecode = true;
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg loadu(const float* p) { return _mm256_loadu_ps(p); }
  static Reg fmadd(Reg w, Reg a, Reg acc) { return _mm256_fmadd_ps(w, a, acc); }
  static float hsum(Reg v) { return avx2::hsum(v); }
};

template <template <int, int> class Tile>
void set_float_kernel(RowKernel& out, void (*encode)(const float*, void*, int64_t)) {
  out = RowKernel{};
  out.act_bytes = widened_bytes;
  out.encode = encode;
  out.dot_rows = TileDispatch<Tile, 4, 3>::decode;
  out.dot_tile = TileDispatch<Tile, 4, 3>::tile;
}

}  // namespace

bool row_kernel_for_float(DType type, RowKernel& out) {
  switch (type) {
    case DType::kF16:
      set_float_kernel<x86::FloatTiles<Avx2Simd, F16Format>::Tile>(out, encode_widened_f16);
      return true;
    case DType::kBF16:
      set_float_kernel<x86::FloatTiles<Avx2Simd, BF16Format>::Tile>(out, encode_widened_bf16);
      return true;
    default: return false;
  }
}

}  // namespace osprey::kernels::avx2
