#include "kernels/x86/avx2/avx2.h"

namespace osprey::kernels::avx2 {

static GatedFn gated_for(Activation act) {
  return act == Activation::kGelu ? gelu_mul : act == Activation::kSwigluOai ? swiglu_oai_mul : silu_mul;
}

const KernelTable& table() {
  static const KernelTable t = [] {
    KernelTable k;
    k.isa = Isa::kAvx2;
    k.dot_for = dot_for;
    k.row_kernel_for = row_kernel_for;
    k.interleaved_row_kernel_for = interleaved_row_kernel_for;
    k.packed_row_kernel_for = packed_row_kernel_for;
    k.gated_for = gated_for;
    k.attend_one = attend_one;
    k.attend_group = attend_group;
    return k;
  }();
  return t;
}

}  // namespace osprey::kernels::avx2
