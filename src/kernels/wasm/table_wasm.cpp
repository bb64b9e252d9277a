#include "kernels/wasm/wasm.h"

namespace osprey::kernels::wasm {

const KernelTable& table() {
  static const KernelTable t{
      .isa = Isa::kWasmSimd128,
      .dot_for = dot_for,
      .row_kernel_for = row_kernel_for,
      .attend_one = attend_one,
      .attend_group = attend_group,
      .attend_heads = attend_heads,
      .attend_lanes = kAttendLanes,
  };
  return t;
}

}  // namespace osprey::kernels::wasm
