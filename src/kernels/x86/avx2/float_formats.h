// How the AVX2 kernels widen the 16-bit float formats (F16, BF16) to fp32,
// eight values at a time, and round fp32 to them: shared by the row tiles
// (gemm_float_avx2.cpp) and the interleaved groups (gemm_float_x32_avx2.cpp).
// Include only from files built with the AVX2 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace osprey::kernels::avx2 {

struct F16Format {
  static __m256 load(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static float load1(uint16_t h) { return _cvtsh_ss(h); }
  // Rounds to fp16 and back: round to nearest even, overflow to infinity.
  static __m256 round8(__m256 x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT)); }
};

struct BF16Format {
  static __m256 load(const uint16_t* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
  static float load1(uint16_t b) {
    const uint32_t bits = static_cast<uint32_t>(b) << 16;
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
  }
  // fp32_to_bf16 (core/fp16.h) eight at a time, widened back: round to
  // nearest even, NaN made quiet.
  static __m256 round8(__m256 x) {
    const __m256i bits = _mm256_castps_si256(x);
    const __m256i abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
    const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_add_epi32(bits, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd));
    const __m256i quiet = _mm256_or_si256(bits, _mm256_set1_epi32(64 << 16));
    const __m256i top = _mm256_blendv_epi8(rounded, quiet, nan);
    return _mm256_castsi256_ps(_mm256_and_si256(top, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
  }
};

}  // namespace osprey::kernels::avx2
