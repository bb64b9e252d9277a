// How weight matrices sit in a GPU back end's memory: the words the matrix
// kernels (kernels/mat_*.kern; each type's block in kernels/weights/*.kinc)
// read, packed once at upload.
//   f32   each value a word
//   f16, bf16  two values a word (unpacked in the shader; no shader-f16 needed)
//   q8_0  every block's scale as an f32 word, row after row; then every
//         block's 32 signed bytes as 8 words
//   q4_0  the same, with every block's 16 bytes of nibbles as 4 words
//   mxfp4 as q4_0, the scale 2^(e - 128) and the nibbles E2M1 codes
//   q5_0  the same, with 4 words of low nibbles and a word of fifth bits
//   q4_1, q5_1  scales, then offsets (f32, row after row), then quants as
//         q4_0's and q5_0's
//   q4_k, q5_k, q6_k  per 32 values: two f32 words (Q4_K/Q5_K: the
//         sub-block's scale and its min negated, which is q4_1's and q5_1's
//         layout exactly, so they share those blocks; Q6_K: its two
//         half-block scales), each kind row after row; then the quants:
//         4 words of nibbles, plus Q5_K's word of fifth bits or Q6_K's two
//         words of top bit pairs (kernels/weights/*.kinc say how they are read)
// Rows are n_in / 32 blocks of 32 values (n_in / 256 super-blocks for K-quants).
#pragma once

#include <cstdint>
#include <vector>

#include "backends/gpu_kernels.h"
#include "core/dtype.h"

namespace osprey::backends {

// The matrix kernel for weights of `type`, or null when no GPU kernel runs it:
// the one-token kernel (matmul.kinc), or with `tokens` the four-token one
// (matmul_tokens.kinc) that passes of several rows take.
const KernelSource* matrix_kernel(DType type, bool tokens = false);

// The bytes pack_weights makes of `n_values` values of `type` (0: no kernel runs it).
int64_t packed_bytes(DType type, int64_t n_values);

// The words of `n_values` values of `type` (a multiple of 32), as GGUF stores them.
std::vector<uint32_t> pack_weights(DType type, const uint8_t* data, int64_t n_values);

}  // namespace osprey::backends
