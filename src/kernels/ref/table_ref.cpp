#include "kernels/ref/ref.h"

#include "kernels/ops.h"
#include "quant/quant.h"

namespace osprey::kernels::ref {

static DotFn dot_for(DType type) {
  const QuantOps* ops = quant_ops(type);
  return ops ? ops->dot : nullptr;
}

static GatedFn gated_for(Activation act) {
  return act == Activation::kGelu ? gelu_mul : act == Activation::kSwigluOai ? swiglu_oai_mul : silu_mul;
}

const KernelTable& table() {
  static const KernelTable t{
      .isa = Isa::kScalar,
      .dot_for = dot_for,
      .gated_for = gated_for,
      .attend_one = kernels::attend_one,
      .attend_group = kernels::attend_group,
  };
  return t;
}

}  // namespace osprey::kernels::ref
