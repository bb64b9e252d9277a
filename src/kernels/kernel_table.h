// What one instruction-set level provides, as data. Each level's folder
// exports one table through one header (ref/ref.h, x86/avx2/avx2.h,
// x86/avx512/avx512.h, arm/neon/neon.h); dispatch.cpp chains the tables from
// the best level down to ref/ and answers every question with the first
// level in the chain that has a kernel for it. A new level (WebAssembly SIMD,
// say) is one folder and one table, not an edit to every dispatch function.
#pragma once

#include "kernels/dispatch.h"

namespace osprey::kernels {

struct KernelTable {
  Isa isa = Isa::kScalar;
  // Each entry may be null; a lookup that finds nothing at this level
  // (a null DotFn, or false) passes the question down the chain.
  DotFn (*dot_for)(DType type) = nullptr;
  // Over rows in the file's layout.
  bool (*row_kernel_for)(DType type, RowKernel& out) = nullptr;
  // Rows repacked into interleaved groups (RowKernel::row_group > 1).
  bool (*interleaved_row_kernel_for)(DType type, RowKernel& out) = nullptr;
  // Rows repacked one for one; tried before row_kernel_for at the same level.
  bool (*packed_row_kernel_for)(DType type, RowKernel& out) = nullptr;
  GatedFn (*gated_for)(Activation act) = nullptr;
  UnaryFn gelu_erf = nullptr;
  F16RowFn f16_row = nullptr;
  LowRankFn low_rank = nullptr;
  AttendFn attend_one = nullptr;
  AttendGroupFn attend_group = nullptr;
  AttendHeadsFn attend_heads = nullptr;
  int attend_lanes = 0;  // queries attend_heads holds in one vector
};

// gated_for for a level that has a kernel for every activation.
template <GatedFn kSilu, GatedFn kGelu, GatedFn kSwigluOai>
GatedFn gated_of(Activation act) {
  return act == Activation::kGelu ? kGelu : act == Activation::kSwigluOai ? kSwigluOai : kSilu;
}

}  // namespace osprey::kernels
