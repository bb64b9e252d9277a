#include "quant/quant.h"

namespace osprey {

namespace quant {
extern const QuantOps kF32Ops, kF16Ops, kBF16Ops, kQ8_0Ops, kQ8_1Ops, kQ4_0Ops, kQ4_1Ops, kQ5_0Ops, kQ5_1Ops,
    kQ8_KOps, kQ2_KOps, kQ3_KOps, kQ4_KOps, kQ5_KOps, kQ6_KOps, kMXFP4Ops;
}  // namespace quant

namespace {
// One row per format. Q8_1 and Q8_K are activation formats: they have no dot
// of their own and no GGUF file stores weights in them.
const QuantOps* const kFormats[] = {
    &quant::kF32Ops,  &quant::kF16Ops,  &quant::kBF16Ops, &quant::kQ8_0Ops, &quant::kQ8_1Ops,
    &quant::kQ4_0Ops, &quant::kQ4_1Ops, &quant::kQ5_0Ops, &quant::kQ5_1Ops, &quant::kQ8_KOps,
    &quant::kQ2_KOps, &quant::kQ3_KOps, &quant::kQ4_KOps, &quant::kQ5_KOps, &quant::kQ6_KOps, &quant::kMXFP4Ops,
};
}  // namespace

const QuantOps* quant_ops(DType type) {
  for (const QuantOps* ops : kFormats)
    if (ops->type == type) return ops;
  return nullptr;
}

std::vector<DType> supported_dtypes() {
  std::vector<DType> out;
  for (const QuantOps* ops : kFormats)
    if (ops->dot != nullptr) out.push_back(ops->type);
  return out;
}

std::string supported_dtype_names() {
  std::string out;
  for (DType t : supported_dtypes()) out += std::string(out.empty() ? "" : ", ") + dtype_name(t);
  return out;
}

}  // namespace osprey
