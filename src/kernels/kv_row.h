// How one row of keys or values is stored in the KV cache: fp16 by default,
// or bf16, f32, or a 32-value block format (q8_0, q5_1, q5_0, q4_1, q4_0)
// that halves or quarters the cache so that more sequences or a longer
// context fit the same memory. The attention kernels decode rows of the
// chosen type into fp32 tiles; fp16 rows keep their vector conversion.
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace osprey::kernels {

// The types a KV row can be stored as: f16, bf16, f32, q8_0, q5_1, q5_0, q4_1, q4_0.
bool is_kv_type(DType type);
// Those types' names, "f16, bf16, ..., q4_0", for help texts and errors.
std::string kv_type_names();
// Whether rows of n values (a KV head is head_dim of them) can be stored as
// `type`: the block formats need n to be a multiple of their 32-value blocks.
bool kv_type_fits(DType type, int64_t n);
// Bytes of n values stored as `type` (n as kv_type_fits allows).
int64_t kv_row_bytes(DType type, int64_t n);

void encode_kv_row(DType type, const float* src, uint8_t* dst, int64_t n);
void decode_kv_row(DType type, const uint8_t* src, float* dst, int64_t n);

}  // namespace osprey::kernels
