// The AVX-512 level (F/BW/VL + VNNI + VBMI; BF16 where the CPU has it):
// every entry point the folder exports, and the table dispatch.cpp chains
// above the AVX2 level, whose kernels answer what this one lacks (the gated
// activations, the dots of most block formats).
#pragma once

#include "kernels/kernel_table.h"

namespace osprey::kernels::avx512 {

DotFn dot_for(DType type);                                   // dot_mxfp4_avx512.cpp: MXFP4 only
bool mxfp4_row_kernel(RowKernel& out);                       // dot_mxfp4_avx512.cpp: the dot and a prompt tile
bool row_kernel_for(DType type, RowKernel& out);              // gemv_avx512.cpp (MXFP4 through mxfp4_row_kernel)
bool interleaved_row_kernel_for(DType type, RowKernel& out);  // gemm_x16_avx512.cpp: rows in groups of 16
void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out);  // attention_avx512.cpp
void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out);
void attend_heads(const float* const* q, int n_q, int n_heads, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out);
constexpr int kAttendLanes = 16;  // queries per vector in attention_avx512.cpp

// This level's table, defined in table_avx512.cpp, which is compiled without the
// level's flags: dispatch.cpp reads it before it knows the CPU can run them.
const KernelTable& table();

}  // namespace osprey::kernels::avx512
