// The row tile for the 16-bit float formats (F16, BF16) that the AVX2 and
// AVX-512 levels share: NR weight rows against NT token rows of fp32
// activations already rounded to the weight's type, NR x NT accumulators
// in registers. A level supplies its vector operations; a format, how its
// 16-bit values widen.
//
// Simd:   Reg, kWidth (floats per register), zero(), loadu(const float*),
//         fmadd(w, a, acc) = w * a + acc, hsum(Reg), kPrefetchBytes;
//         kDecodeReadsHalves: decode (NR == 1) reads the activations' 16-bit
//         copy stored after their n floats (see the AVX-512 act_bytes);
//         kPrefetchDecode: decode prefetches its one row too.
// Format: load(const uint16_t*) -> Reg, load1(uint16_t) -> float.
//
// Each (row, token) result is one chain of FMAs over the row in order, then
// the level's horizontal sum, then the scalar tail: the same whatever NR and
// NT are, so decode and tiles agree bit for bit. Everything here is a
// template of the level, so each level's copy is built with its own flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace osprey::kernels::x86 {

template <class Simd, class Format, int NR, int NT>
void float_tile(const uint8_t* w, int64_t row_bytes, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                int64_t out_stride) {
  using Reg = typename Simd::Reg;
  constexpr int kW = Simd::kWidth;
  constexpr bool kHalves = NR == 1 && Simd::kDecodeReadsHalves;
  const uint16_t* row[NR];
  for (int r = 0; r < NR; ++r) row[r] = reinterpret_cast<const uint16_t*>(w + r * row_bytes);
  const float* a[NT];
  const uint16_t* a16[NT];  // the same values, 16 bits each, where the level stores them
  for (int t = 0; t < NT; ++t) {
    a[t] = reinterpret_cast<const float*>(act + t * act_stride);
    if constexpr (kHalves) a16[t] = reinterpret_cast<const uint16_t*>(a[t] + n);
  }
  Reg acc[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc[r][t] = Simd::zero();
  auto step = [&](int64_t i) {
    Reg wv[NR];
    for (int r = 0; r < NR; ++r) wv[r] = Format::load(row[r] + i);
    for (int t = 0; t < NT; ++t) {
      Reg av;
      if constexpr (kHalves) av = Format::load(a16[t] + i);
      else av = Simd::loadu(a[t] + i);
      for (int r = 0; r < NR; ++r) acc[r][t] = Simd::fmadd(wv[r], av, acc[r][t]);
    }
  };
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {  // one 64-byte line of each row
    if constexpr (NR > 1 || Simd::kPrefetchDecode)
      for (int r = 0; r < NR; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(row[r] + i) + Simd::kPrefetchBytes, _MM_HINT_T0);
    for (int u = 0; u < 32; u += kW) step(i + u);
  }
  for (; i + kW <= n; i += kW) step(i);
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) {
      float s = Simd::hsum(acc[r][t]);
      for (int64_t k = i; k < n; ++k) s += Format::load1(row[r][k]) * a[t][k];
      out[t * out_stride + r] = s;
    }
}

// float_tile in the shape TileDispatch (kernels/tile_dispatch.h) takes:
// FloatTiles<Simd, Format>::Tile<NR, NT>::run.
template <class Simd, class Format>
struct FloatTiles {
  template <int NR, int NT>
  struct Tile {
    static void run(const uint8_t* w, int64_t rb, const uint8_t* act, int64_t as, int64_t n, float* out, int64_t os) {
      float_tile<Simd, Format, NR, NT>(w, rb, act, as, n, out, os);
    }
  };
};

}  // namespace osprey::kernels::x86
