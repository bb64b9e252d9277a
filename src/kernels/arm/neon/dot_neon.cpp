// NEON + dotprod dot products of weight rows with encoded activations.
// Built with -march=armv8.2-a+dotprod+fp16; only called after the CPU was
// probed (kernels/dispatch.cpp). Each must agree with the scalar reference in
// src/quant/ up to float summation order (tests/kernels/dot_test.cpp).
#include <arm_neon.h>

#include "kernels/dispatch.h"
#include "kernels/arm/neon/neon.h"
#include "quant/blocks.h"
#include "quant/k_quant_common.h"

namespace osprey::kernels::neon {

using namespace osprey::quant;

namespace {

inline float half(uint16_t h) {
  float16_t f;
  __builtin_memcpy(&f, &h, 2);
  return static_cast<float>(f);
}

inline float32x4_t load_half4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

// The 32 signed levels of a Q4_0 block: low nibbles are elements 0-15, high
// nibbles 16-31, both offset by 8.
inline void q4_0_levels(const uint8_t* qs, int8x16_t& lo, int8x16_t& hi) {
  const uint8x16_t b = vld1q_u8(qs);
  const int8x16_t eight = vdupq_n_s8(8);
  lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0x0F))), eight);
  hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), eight);
}

float dot_q8_0(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float32x4_t acc = vdupq_n_f32(0);
  for (int64_t i = 0; i < n / kQK; ++i) {
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), vld1q_s8(x[i].qs), vld1q_s8(y[i].qs));
    s = vdotq_s32(s, vld1q_s8(x[i].qs + 16), vld1q_s8(y[i].qs + 16));
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), half(x[i].d) * half(y[i].d));
  }
  return vaddvq_f32(acc);
}

float dot_q4_0(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float32x4_t acc = vdupq_n_f32(0);
  for (int64_t i = 0; i < n / kQK; ++i) {
    int8x16_t lo, hi;
    q4_0_levels(x[i].qs, lo, hi);
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(y[i].qs));
    s = vdotq_s32(s, hi, vld1q_s8(y[i].qs + 16));
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), half(x[i].d) * half(y[i].d));
  }
  return vaddvq_f32(acc);
}

float dot_q4_k(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ4_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint64_t scales, mins;
    k_unpack_scales_mins(x[i].scales, scales, mins);
    int32_t summ = 0;
    for (int j = 0; j < 8; ++j)
      summ += static_cast<int>((mins >> (8 * j)) & 0xFF) * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    int32_t sumi = 0;
    // 32 bytes of nibbles per pair of sub-blocks: low nibbles are sub-block
    // 2c, high nibbles sub-block 2c + 1.
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = x[i].qs + 32 * c;
      const int8_t* ya = y[i].qs + 64 * c;
      const uint8x16_t q0 = vld1q_u8(q), q1 = vld1q_u8(q + 16);
      int32x4_t lo = vdotq_s32(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(q0, low4)), vld1q_s8(ya));
      lo = vdotq_s32(lo, vreinterpretq_s8_u8(vandq_u8(q1, low4)), vld1q_s8(ya + 16));
      int32x4_t hi = vdotq_s32(vdupq_n_s32(0), vreinterpretq_s8_u8(vshrq_n_u8(q0, 4)), vld1q_s8(ya + 32));
      hi = vdotq_s32(hi, vreinterpretq_s8_u8(vshrq_n_u8(q1, 4)), vld1q_s8(ya + 48));
      sumi += vaddvq_s32(lo) * static_cast<int>((scales >> (16 * c)) & 0xFF) +
              vaddvq_s32(hi) * static_cast<int>((scales >> (16 * c + 8)) & 0xFF);
    }
    sum += y[i].d * (half(x[i].d) * static_cast<float>(sumi) - half(x[i].dmin) * static_cast<float>(summ));
  }
  return sum;
}

float dot_q6_k(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const uint8x16_t low4 = vdupq_n_u8(0x0F), three = vdupq_n_u8(3);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    // sum (q - 32) * a = sum q * a - 32 * sum a, the last term from the block sums.
    int32_t bias = 0;
    for (int s = 0; s < 16; ++s) bias += x[i].scales[s] * y[i].bsums[s];
    int32_t sumi = 0;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x[i].ql + 64 * h;
      const uint8_t* qh = x[i].qh + 32 * h;
      const int8_t* sc = x[i].scales + 8 * h;
      const int8_t* ya = y[i].qs + 128 * h;
      // Each half holds 128 levels in four groups of 32: group k takes
      // nibbles from ql (low for k = 0, 1, high for 2, 3; bytes 0-31 for even
      // k, 32-63 for odd) and two bits from qh at shift 2k.
      for (int part = 0; part < 2; ++part) {  // bytes 16*part .. of each 32-byte row
        const uint8x16_t l0 = vld1q_u8(ql + 16 * part), l1 = vld1q_u8(ql + 32 + 16 * part);
        const uint8x16_t hb = vld1q_u8(qh + 16 * part);
        const uint8x16_t q[4] = {
            vorrq_u8(vandq_u8(l0, low4), vshlq_n_u8(vandq_u8(hb, three), 4)),
            vorrq_u8(vandq_u8(l1, low4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), three), 4)),
            vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), three), 4)),
            vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4)),
        };
        for (int k = 0; k < 4; ++k) {
          // Elements 32k + 16*part .. + 15 share scale 2k + part.
          const int32x4_t d = vdotq_s32(vdupq_n_s32(0), vreinterpretq_s8_u8(q[k]), vld1q_s8(ya + 32 * k + 16 * part));
          sumi += vaddvq_s32(d) * sc[2 * k + part];
        }
      }
    }
    sum += half(x[i].d) * y[i].d * static_cast<float>(sumi - 32 * bias);
  }
  return sum;
}

float dot_f16(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const uint16_t*>(a);
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    acc0 = vfmaq_f32(acc0, load_half4(x + i), load_half4(y + i));
    acc1 = vfmaq_f32(acc1, load_half4(x + i + 4), load_half4(y + i + 4));
  }
  float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
  for (; i < n; ++i) sum += half(x[i]) * half(y[i]);
  return sum;
}

float dot_f32(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const float*>(w);
  const auto* y = static_cast<const float*>(a);
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    acc0 = vfmaq_f32(acc0, vld1q_f32(x + i), vld1q_f32(y + i));
    acc1 = vfmaq_f32(acc1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
  }
  float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
  for (; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

}  // namespace

DotFn dot_for(DType type) {
  switch (type) {
    case DType::kQ8_0: return dot_q8_0;
    case DType::kQ4_0: return dot_q4_0;
    case DType::kQ4_K: return dot_q4_k;
    case DType::kQ6_K: return dot_q6_k;
    case DType::kF16: return dot_f16;
    case DType::kF32: return dot_f32;
    default: return nullptr;
  }
}

}  // namespace osprey::kernels::neon
