// The AVX2 level (AVX2 + FMA + F16C): every entry point the folder exports,
// and the table dispatch.cpp chains above ref/. The definitions are compiled
// with AVX2 flags; nothing here may be called unless the CPU has AVX2.
#pragma once

#include "kernels/kernel_table.h"

namespace osprey::kernels::avx2 {

DotFn dot_for(DType type);                                  // dot_avx2.cpp; null where there is none
float dot_f32(const void* w, const void* a, int64_t n);     // dot_avx2.cpp: F32 rows, also LoRA's A x
bool row_kernel_for(DType type, RowKernel& out);             // gemm_avx2.cpp
bool packed_row_kernel_for(DType type, RowKernel& out);      // gemm_packed_avx2.cpp: Q4_0, Q8_0 repacked
bool interleaved_row_kernel_for(DType type, RowKernel& out); // gemm_q4_0_x8_avx2.cpp: rows in groups of 8 (F16/BF16: 32)
void silu_mul(float* out, const float* gate, const float* up, int64_t n);  // elementwise_avx2.cpp
void gelu_mul(float* out, const float* gate, const float* up, int64_t n);
void swiglu_oai_mul(float* out, const float* gate, const float* up, int64_t n);
void gelu_erf(float* x, int64_t n);
void f16_row(const float* x, uint16_t* out, int64_t n);  // F16C, round to nearest even
void low_rank_update(float* y, const float* x, const float* a, const float* bt, int64_t r, int64_t n_in,
                     int64_t n_out, float s, float* mid);
void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out);  // attention_avx2.cpp
void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out);
void attend_heads(const float* const* q, int n_q, int n_heads, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out);
constexpr int kAttendLanes = 8;  // queries per vector in attention_avx2.cpp
void encode_planar_q8(const float* x, void* act, int64_t n);  // encode_avx2.cpp: the AVX-512 level reuses it
void encode_planar_q8k(const float* x, void* act, int64_t n); // encode_avx2.cpp: and this one

// This level's table, defined in table_avx2.cpp, which is compiled without the
// level's flags: dispatch.cpp reads it before it knows the CPU can run them.
const KernelTable& table();

}  // namespace osprey::kernels::avx2
