#include "kernels/ref/ref.h"

#include "kernels/ops.h"
#include "quant/quant.h"

namespace osprey::kernels::ref {

static DotFn dot_for(DType type) {
  const QuantOps* ops = quant_ops(type);
  return ops ? ops->dot : nullptr;
}

const KernelTable& table() {
  static const KernelTable t{
      .isa = Isa::kScalar,
      .dot_for = dot_for,
      .gated_for = gated_of<silu_mul, gelu_mul, swiglu_oai_mul>,
      .attend_one = kernels::attend_one,
      .attend_group = kernels::attend_group,
  };
  return t;
}

}  // namespace osprey::kernels::ref
