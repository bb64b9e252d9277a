#include "kernels/x86/avx512/avx512.h"

namespace osprey::kernels::avx512 {

const KernelTable& table() {
  static const KernelTable t = [] {
    KernelTable k;
    k.isa = Isa::kAvx512;
    k.dot_for = dot_for;
    k.row_kernel_for = row_kernel_for;
    k.interleaved_row_kernel_for = interleaved_row_kernel_for;
    k.attend_one = attend_one;
    k.attend_group = attend_group;
    return k;
  }();
  return t;
}

}  // namespace osprey::kernels::avx512
