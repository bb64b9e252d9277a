#include "kernels/x86/avx512/avx512.h"

namespace osprey::kernels::avx512 {

const KernelTable& table() {
  static const KernelTable t{
      .isa = Isa::kAvx512,
      .dot_for = dot_for,
      .row_kernel_for = row_kernel_for,
      .interleaved_row_kernel_for = interleaved_row_kernel_for,
      .attend_one = attend_one,
      .attend_group = attend_group,
      .attend_heads = attend_heads,
      .attend_lanes = kAttendLanes,
  };
  return t;
}

}  // namespace osprey::kernels::avx512
