// The WebAssembly SIMD128 level (every current browser, Node 16+): every
// entry point the folder exports, and the table dispatch.cpp chains above
// ref/. A module built with -msimd128 only loads where SIMD128 exists, so
// the level needs no run-time probe.
#pragma once

#include "kernels/kernel_table.h"

namespace osprey::kernels::wasm {

DotFn dot_for(DType type);  // dot_wasm.cpp; null where there is none
bool row_kernel_for(DType type, RowKernel& out);  // gemm_wasm.cpp: Q8_0 and Q4_0 with 16-bit activations
// Those kernels' activation encoding for weights of `type` through the scalar
// q8_0 encoder, which their SIMD encoder must equal byte for byte
// (tests/kernels/dot_test.cpp).
void encode_widened_q8_reference(DType type, const float* x, void* act, int64_t n);
void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out);  // attention_wasm.cpp
void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out);
void attend_heads(const float* const* q, int n_q, int n_heads, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out);
constexpr int kAttendLanes = 4;  // queries per vector in attention_wasm.cpp

const KernelTable& table();  // table_wasm.cpp

}  // namespace osprey::kernels::wasm
