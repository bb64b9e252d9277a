#include "kernels/x86/avx2/avx2.h"

namespace osprey::kernels::avx2 {

const KernelTable& table() {
  static const KernelTable t{
      .isa = Isa::kAvx2,
      .dot_for = dot_for,
      .row_kernel_for = row_kernel_for,
      .interleaved_row_kernel_for = interleaved_row_kernel_for,
      .packed_row_kernel_for = packed_row_kernel_for,
      .gated_for = gated_of<silu_mul, gelu_mul, swiglu_oai_mul>,
      .gelu_erf = gelu_erf,
      .f16_row = f16_row,
      .low_rank = low_rank_update,
      .attend_one = attend_one,
      .attend_group = attend_group,
      .attend_heads = attend_heads,
      .attend_lanes = kAttendLanes,
  };
  return t;
}

}  // namespace osprey::kernels::avx2
