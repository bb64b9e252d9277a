// AVX-512 tiles for the 16-bit float formats F16 and BF16: NR weight rows
// against NT token rows (decode is NT = 1). Built with the AVX-512 flags;
// only called after the CPU was probed.
//
// The tile is the one the AVX2 level uses (x86/float_tile.h), sixteen lanes
// wide. The activations are rounded once to the weight's type, as in the AVX2
// tiles (gemm_float_avx2.cpp), and kept both widened to fp32 and in 16 bits
// (see act_bytes). With 32 registers a tile of
// 4 rows x 4 tokens keeps 16 accumulators, so each converted weight vector
// serves four tokens and each activation load four rows; decode reads one
// row at a time (see float_tile). On Zen 4 a 512-bit
// FMA does no more arithmetic per cycle than two 256-bit ones; the gain is
// half the instructions for the same work and a prefetch distance tuned for
// this machine (avx512_util.h).
// GCC 12 reports the _mm512_undefined_* operands inside its own intrinsics
// (conversions, reductions) as uninitialized; they are fully overwritten. The
// pragmas precede the header, where those inline functions are defined.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include "kernels/dispatch.h"
#include "kernels/tile_dispatch.h"
#include "kernels/x86/float_tile.h"
#include "kernels/x86/avx2/float_encode.h"
#include "kernels/x86/avx512/avx512_util.h"

namespace osprey::kernels::avx512 {

namespace {

struct F16Format {
  static __m512 load(const uint16_t* p) { return load_f16x16(p); }
  static float load1(uint16_t h) { return _cvtsh_ss(h); }
  // The 16-bit code of values already rounded to fp16: exact.
  static __m256i narrow16(__m512 x) { return _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT); }
};

struct BF16Format {
  static __m512 load(const uint16_t* p) { return load_bf16x16(p); }
  static float load1(uint16_t b) {
    const uint32_t bits = static_cast<uint32_t>(b) << 16;
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
  }
  // The top half of values already rounded to bf16: exact.
  static __m256i narrow16(__m512 x) { return _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(x), 16)); }
};

// The activations: the AVX2 tiles' widened fp32 row (n floats), then the
// same values in the weight's 16-bit type (n halves). Decode, which reads
// one weight row at a time, reads the halves: a row of 5632 fp32 values
// (22 KiB) beside the weight stream overflowed L1 and slowed ffn_down by
// about a third against the other products. The values are identical,
// so decode and tiles still agree bit for bit.
int64_t act_bytes(int64_t n) { return n * static_cast<int64_t>(sizeof(float) + sizeof(uint16_t)); }

template <typename Format>
void encode_act(const float* x, void* act, int64_t n, void (*widen)(const float*, void*, int64_t)) {
  widen(x, act, n);
  const auto* y = static_cast<const float*>(act);
  auto* h = reinterpret_cast<uint16_t*>(static_cast<uint8_t*>(act) + n * static_cast<int64_t>(sizeof(float)));
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + i), Format::narrow16(_mm512_loadu_ps(y + i)));
  for (; i < n; ++i) h[i] = 0;  // never read: the kernel's tail reads the fp32 row
}

// The level's vector operations for x86::float_tile. Decode reads one row
// at a time: the rows of a matrix are then a single sequential stream,
// which the hardware prefetcher follows at nearly the read bandwidth, where
// 4 or 12 rows side by side, prefetched or not, were markedly slower
// (gemv_stream/f16; README, "Measurements behind the kernels"). Tiles are
// compute-bound and prefetch their rows.
struct Avx512Simd {
  using Reg = __m512;
  static constexpr int kWidth = 16;
  static constexpr int64_t kPrefetchBytes = avx512::kPrefetchBytes;
  static constexpr bool kDecodeReadsHalves = true, kPrefetchDecode = false;
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg loadu(const float* p) { return _mm512_loadu_ps(p); }
  static Reg fmadd(Reg w, Reg a, Reg acc) { return _mm512_fmadd_ps(w, a, acc); }
  static float hsum(Reg v) { return _mm512_reduce_add_ps(v); }
};

void encode_f16(const float* x, void* act, int64_t n) { encode_act<F16Format>(x, act, n, avx2::encode_widened_f16); }
void encode_bf16(const float* x, void* act, int64_t n) { encode_act<BF16Format>(x, act, n, avx2::encode_widened_bf16); }

template <template <int, int> class Tile>
void set_float_kernel(RowKernel& out, void (*encode)(const float*, void*, int64_t)) {
  out = RowKernel{};
  out.act_bytes = act_bytes;
  out.encode = encode;
  out.dot_rows = TileDispatch<Tile, 1, 4>::decode;
  out.dot_tile = TileDispatch<Tile, 1, 4>::tile;
}

}  // namespace

bool row_kernel_for_float(DType type, RowKernel& out) {
  switch (type) {
    case DType::kF16: set_float_kernel<x86::FloatTiles<Avx512Simd, F16Format>::Tile>(out, encode_f16); return true;
    case DType::kBF16: set_float_kernel<x86::FloatTiles<Avx512Simd, BF16Format>::Tile>(out, encode_bf16); return true;
    default: return false;
  }
}

}  // namespace osprey::kernels::avx512
