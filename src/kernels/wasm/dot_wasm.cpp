// SIMD128 dot products of weight rows with encoded activations: the NEON
// level's block arithmetic on 128-bit WebAssembly vectors. Q8_0 and Q4_0 have
// row kernels of their own (gemm_wasm.cpp), which the dispatch prefers. Each must agree
// with the scalar reference in src/quant/ up to float summation order
// (tests/kernels/dot_test.cpp runs them under Node).
#include "core/fp16.h"
#include "kernels/dispatch.h"
#include "kernels/wasm/simd128_util.h"
#include "kernels/wasm/wasm.h"
#include "quant/blocks.h"
#include "quant/k_quant_common.h"

namespace osprey::kernels::wasm {

using namespace osprey::quant;

namespace {

float dot_q4_k(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ4_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const v128_t low4 = wasm_i8x16_splat(0x0F);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint64_t scales, mins;
    k_unpack_scales_mins(x[i].scales, scales, mins);
    int32_t summ = 0;
    for (int j = 0; j < 8; ++j)
      summ += static_cast<int>((mins >> (8 * j)) & 0xFF) * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    int32_t sumi = 0;
    // 32 bytes of nibbles per pair of sub-blocks: low nibbles are sub-block
    // 2c, high nibbles sub-block 2c + 1 (levels 0..15 are valid signed bytes).
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = x[i].qs + 32 * c;
      const int8_t* ya = y[i].qs + 64 * c;
      const v128_t q0 = wasm_v128_load(q), q1 = wasm_v128_load(q + 16);
      const v128_t lo = wasm_i32x4_add(dot_i8x16(wasm_v128_and(q0, low4), wasm_v128_load(ya)),
                                       dot_i8x16(wasm_v128_and(q1, low4), wasm_v128_load(ya + 16)));
      const v128_t hi = wasm_i32x4_add(dot_i8x16(wasm_u8x16_shr(q0, 4), wasm_v128_load(ya + 32)),
                                       dot_i8x16(wasm_u8x16_shr(q1, 4), wasm_v128_load(ya + 48)));
      sumi += hsum_i32x4(lo) * static_cast<int>((scales >> (16 * c)) & 0xFF) +
              hsum_i32x4(hi) * static_cast<int>((scales >> (16 * c + 8)) & 0xFF);
    }
    sum += y[i].d * (fp16_to_fp32(x[i].d) * static_cast<float>(sumi) - fp16_to_fp32(x[i].dmin) * static_cast<float>(summ));
  }
  return sum;
}

float dot_q6_k(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const v128_t low4 = wasm_i8x16_splat(0x0F), three = wasm_i8x16_splat(3);
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
      for (int part = 0; part < 2; ++part) {
        const v128_t l0 = wasm_v128_load(ql + 16 * part), l1 = wasm_v128_load(ql + 32 + 16 * part);
        const v128_t hb = wasm_v128_load(qh + 16 * part);
        const v128_t q[4] = {
            wasm_v128_or(wasm_v128_and(l0, low4), wasm_i8x16_shl(wasm_v128_and(hb, three), 4)),
            wasm_v128_or(wasm_v128_and(l1, low4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hb, 2), three), 4)),
            wasm_v128_or(wasm_u8x16_shr(l0, 4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hb, 4), three), 4)),
            wasm_v128_or(wasm_u8x16_shr(l1, 4), wasm_i8x16_shl(wasm_u8x16_shr(hb, 6), 4)),
        };
        for (int k = 0; k < 4; ++k)  // elements 32k + 16*part .. + 15 share scale 2k + part
          sumi += hsum_i32x4(dot_i8x16(q[k], wasm_v128_load(ya + 32 * k + 16 * part))) * sc[2 * k + part];
      }
    }
    sum += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(sumi - 32 * bias);
  }
  return sum;
}

float dot_f16(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const uint16_t*>(a);
  v128_t acc0 = wasm_f32x4_splat(0), acc1 = wasm_f32x4_splat(0);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(half4_to_f32(x + i), half4_to_f32(y + i)));
    acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(half4_to_f32(x + i + 4), half4_to_f32(y + i + 4)));
  }
  float sum = hsum_f32x4(wasm_f32x4_add(acc0, acc1));
  for (; i < n; ++i) sum += fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]);
  return sum;
}

float dot_f32(const void* w, const void* a, int64_t n) {
  const auto* x = static_cast<const float*>(w);
  const auto* y = static_cast<const float*>(a);
  v128_t acc0 = wasm_f32x4_splat(0), acc1 = wasm_f32x4_splat(0);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(wasm_v128_load(x + i), wasm_v128_load(y + i)));
    acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(wasm_v128_load(x + i + 4), wasm_v128_load(y + i + 4)));
  }
  float sum = hsum_f32x4(wasm_f32x4_add(acc0, acc1));
  for (; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

}  // namespace

DotFn dot_for(DType type) {
  switch (type) {
    case DType::kQ4_K: return dot_q4_k;
    case DType::kQ6_K: return dot_q6_k;
    case DType::kF16: return dot_f16;
    case DType::kF32: return dot_f32;
    default: return nullptr;
  }
}

}  // namespace osprey::kernels::wasm
