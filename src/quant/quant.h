// The quantization registry: one row of traits per element type. The rest of
// the engine asks this table how to turn a row into floats, how to encode
// floats, and which dot product to run against which activation format.
// Adding a format means one new file defining its QuantOps and one line in
// registry.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace osprey {

struct QuantOps {
  DType type;
  int64_t block_len;
  int64_t block_bytes;
  // n is a multiple of block_len in all three.
  void (*dequantize)(const void* src, float* dst, int64_t n);
  void (*quantize)(const float* src, void* dst, int64_t n);
  // Activations are encoded once per row in `dot_type` before the dot products.
  DType dot_type;
  // sum_i w[i] * a[i] for a weight row w of this type and activations a of dot_type.
  float (*dot)(const void* w, const void* a, int64_t n);
  // quantize, minimising sum_i weights[i] * err[i]^2 instead of the plain
  // squared error (weights: one per element, an importance matrix's column
  // weights for the row). Null for types whose encoder has nothing to weigh.
  void (*quantize_weighted)(const float* src, void* dst, int64_t n, const float* weights) = nullptr;
};

// nullptr when osprey has no arithmetic for the type.
const QuantOps* quant_ops(DType type);
std::vector<DType> supported_dtypes();
// Their names, as files and --type spell them: "f32, f16, bf16, ...".
std::string supported_dtype_names();

// Bytes of a row of n elements (n a multiple of the block length).
inline int64_t quant_row_bytes(const QuantOps& ops, int64_t n) { return n / ops.block_len * ops.block_bytes; }

}  // namespace osprey
