#include "kernels/arm/neon/neon.h"

namespace osprey::kernels::neon {

const KernelTable& table() {
  static const KernelTable t = [] {
    KernelTable k;
    k.isa = Isa::kNeon;
    k.dot_for = dot_for;
    k.attend_one = attend_one;
    k.attend_group = attend_group;
    return k;
  }();
  return t;
}

}  // namespace osprey::kernels::neon
