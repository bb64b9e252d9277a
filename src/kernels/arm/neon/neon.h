// The NEON level (Advanced SIMD + dotprod, ARMv8.2 and later): every entry
// point the folder exports, and the table dispatch.cpp chains above ref/.
#pragma once

#include "kernels/kernel_table.h"

namespace osprey::kernels::neon {

DotFn dot_for(DType type);  // dot_neon.cpp; null where there is none
void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out);  // attention_neon.cpp
void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out);
void attend_heads(const float* const* q, int n_q, int n_heads, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out);
constexpr int kAttendLanes = 4;  // queries per vector in attention_neon.cpp

// This level's table, defined in table_neon.cpp, which is compiled without the
// level's flags: dispatch.cpp reads it before it knows the CPU can run them.
const KernelTable& table();

}  // namespace osprey::kernels::neon
