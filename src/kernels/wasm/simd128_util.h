// Small SIMD128 helpers shared by the level's kernels.
#pragma once

#include <wasm_simd128.h>

#include <cmath>
#include <cstdint>

namespace osprey::kernels::wasm {

// Four 32-bit sums over 16 pairs of signed bytes. SIMD128 has no byte dot
// product: bytes widen to 16 bits, and i32x4.dot_i16x8_s adds pairs.
inline v128_t dot_i8x16(v128_t a, v128_t b) {
  return wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(a), wasm_i16x8_extend_low_i8x16(b)),
                        wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(a), wasm_i16x8_extend_high_i8x16(b)));
}

inline int32_t hsum_i32x4(v128_t v) {
  return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) + wasm_i32x4_extract_lane(v, 2) +
         wasm_i32x4_extract_lane(v, 3);
}

inline float hsum_f32x4(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

// The largest lane, passing over NaN lanes as std::fmax does.
inline float hmax_f32x4(v128_t v) {
  return std::fmax(std::fmax(wasm_f32x4_extract_lane(v, 0), wasm_f32x4_extract_lane(v, 1)),
                   std::fmax(wasm_f32x4_extract_lane(v, 2), wasm_f32x4_extract_lane(v, 3)));
}

// Four IEEE halves (the low 64 bits of a load) to floats, exactly:
// subnormals by a multiply that rescales the exponent, inf and NaN kept.
inline v128_t half4_to_f32(const uint16_t* p) {
  const v128_t h = wasm_u32x4_load16x4(p);
  const v128_t sign = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16);
  const v128_t mag = wasm_v128_and(h, wasm_i32x4_splat(0x7FFF));
  // (mag << 13) read as a float is the value scaled by 2^-112.
  const v128_t scaled = wasm_f32x4_mul(wasm_i32x4_shl(mag, 13), wasm_f32x4_splat(0x1p112f));
  const v128_t special = wasm_i32x4_ge(mag, wasm_i32x4_splat(0x7C00));
  const v128_t inf_nan = wasm_v128_or(wasm_i32x4_shl(mag, 13), wasm_i32x4_splat(0x7F800000));
  return wasm_v128_or(sign, wasm_v128_bitselect(inf_nan, scaled, special));
}

}  // namespace osprey::kernels::wasm
