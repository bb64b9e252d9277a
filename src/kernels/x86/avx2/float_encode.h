// The activation encodings of the 16-bit float formats (gemm_float_avx2.cpp),
// shared by the AVX2 and AVX-512 F16/BF16 kernels: the fp32 row rounded to
// the weight's type and kept widened, so a tile converts only its weights.
// Plain declarations: callable from code built with any flags.
#pragma once

#include <cstdint>

namespace osprey::kernels::avx2 {

void encode_widened_f16(const float* x, void* act, int64_t n);
void encode_widened_bf16(const float* x, void* act, int64_t n);

}  // namespace osprey::kernels::avx2
