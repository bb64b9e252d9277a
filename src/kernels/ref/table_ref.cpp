#include "kernels/ref/ref.h"

#include "core/fp16.h"
#include "kernels/ops.h"
#include "quant/quant.h"

namespace osprey::kernels::ref {

static void f16_row(const float* x, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(x[i]);
}

static DotFn dot_for(DType type) {
  const QuantOps* ops = quant_ops(type);
  return ops ? ops->dot : nullptr;
}

const KernelTable& table() {
  static const KernelTable t{
      .isa = Isa::kScalar,
      .dot_for = dot_for,
      .gated_for = gated_of<silu_mul, gelu_mul, swiglu_oai_mul>,
      .gelu_erf = kernels::gelu_erf,
      .f16_row = f16_row,
      .low_rank = kernels::low_rank_update,
      .attend_one = kernels::attend_one,
      .attend_group = kernels::attend_group,
  };
  return t;
}

}  // namespace osprey::kernels::ref
