#include "kernels/arm/neon/neon.h"

namespace osprey::kernels::neon {

const KernelTable& table() {
  static const KernelTable t{
      .isa = Isa::kNeon,
      .dot_for = dot_for,
      .attend_one = attend_one,
      .attend_group = attend_group,
      .attend_heads = attend_heads,
      .attend_lanes = kAttendLanes,
  };
  return t;
}

}  // namespace osprey::kernels::neon
