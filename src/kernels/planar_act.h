// Activation encodings shared by the SIMD tile kernels of every instruction
// set. They hold exactly the values of the reference encodings (Q8_0 for the
// 32-element block formats, Q8_K for the k-quants), laid out so that a
// kernel reads the int8 values as one stream and finds the scales and sums
// beside them, already in float or int32.
#pragma once

#include <cstdint>

namespace osprey::kernels {

// "q8 planar": n int8 values, then one float scale (Q8_0's, rounded through
// fp16) per 32 values, then one int32 sum per 32 values.
struct PlanarQ8 {
  const int8_t* q = nullptr;
  const float* d = nullptr;
  const int32_t* sum = nullptr;
  PlanarQ8() = default;
  PlanarQ8(const void* act, int64_t n)
      : q(static_cast<const int8_t*>(act)),
        d(reinterpret_cast<const float*>(q + n)),
        sum(reinterpret_cast<const int32_t*>(d + n / 32)) {}
};
int64_t planar_q8_bytes(int64_t n);
void encode_planar_q8(const float* x, void* act, int64_t n);
// The same values and scales with each pair of blocks interleaved by halves:
// [b0 0..15][b1 0..15][b0 16..31][b1 16..31]; an odd last block stays in
// order. It matches the nibble order of two Q4_0 blocks read as one 256-bit
// word (kernels/repack.h), so no shuffles are needed in the inner loop.
void encode_planar_q8_paired(const float* x, void* act, int64_t n);
// The reordering encode_planar_q8_paired applies to the n values at q.
void pair_act_halves(int8_t* q, int64_t n);

// "q8_k planar": n int8 values, then one float scale per 256 values, then
// the int32 sum of every 32 values (for the Q4_K min term), then the int16
// sum of every 16 (Q8_K's bsums, for the Q6_K offset).
struct PlanarQ8K {
  const int8_t* q = nullptr;
  const float* d = nullptr;
  const int32_t* sum32 = nullptr;
  const int16_t* sum16 = nullptr;
  PlanarQ8K() = default;
  PlanarQ8K(const void* act, int64_t n)
      : q(static_cast<const int8_t*>(act)),
        d(reinterpret_cast<const float*>(q + n)),
        sum32(reinterpret_cast<const int32_t*>(d + n / 256)),
        sum16(reinterpret_cast<const int16_t*>(sum32 + n / 32)) {}
};
int64_t planar_q8k_bytes(int64_t n);
void encode_planar_q8k(const float* x, void* act, int64_t n);

// Two 32-element activation sums (each |sum| <= 32 * 128, so it fits int16)
// as the int16 pair [lo, hi] of one 32-bit word, for the k-quant kernels'
// min term: one pairwise int16 multiply-add then meets two sub-blocks' mins.
inline int32_t int16_pair(int32_t lo, int32_t hi) {
  return static_cast<int32_t>((static_cast<uint32_t>(lo) & 0xFFFFu) | (static_cast<uint32_t>(hi) << 16));
}

}  // namespace osprey::kernels
