// Run-time choice of kernel variants. The CPU is probed once; hot code then
// calls through the chosen function pointers and never checks again.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace osprey::kernels {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512bf16 = false;
  bool avx_vnni = false;
};
const CpuFeatures& cpu_features();

// sum_i w[i] * a[i]: w a weight row of some type, a the activations encoded in
// that type's dot_type (see quant.h).
using DotFn = float (*)(const void* w, const void* a, int64_t n);

enum class Isa { kScalar, kAvx2 };
const char* isa_name(Isa isa);

// Instruction sets this build has kernels for and this CPU can run, best last.
std::vector<Isa> available_isas();
// Instruction sets this build compiled kernels for, whether or not the CPU runs them.
std::vector<Isa> compiled_isas();

// The dot kernel for `type` at a given level; falls back to the scalar
// reference where the level has no kernel for the type.
DotFn dot_kernel(DType type, Isa isa);

// The level in use: the best available, unless OSPREY_ISA=scalar|avx2 asks
// for another (tests and comparisons).
Isa active_isa();
DotFn dot_kernel(DType type);

}  // namespace osprey::kernels
