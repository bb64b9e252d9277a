#include "kernels/kv_row.h"

#include "core/fp16.h"
#include "kernels/dispatch.h"
#include "quant/quant.h"

namespace osprey::kernels {

namespace {

constexpr DType kKvTypes[] = {DType::kF16, DType::kBF16, DType::kF32, DType::kQ8_0,
                              DType::kQ5_1, DType::kQ5_0, DType::kQ4_1, DType::kQ4_0};

}  // namespace

std::string kv_type_names() {
  std::string names;
  for (DType t : kKvTypes) names += (names.empty() ? "" : ", ") + std::string(dtype_name(t));
  return names;
}

bool is_kv_type(DType type) {
  for (DType k : kKvTypes)
    if (k == type) return true;
  return false;
}

bool kv_type_fits(DType type, int64_t n) {
  const QuantOps* ops = quant_ops(type);
  return is_kv_type(type) && ops != nullptr && n > 0 && n % ops->block_len == 0;
}

int64_t kv_row_bytes(DType type, int64_t n) { return static_cast<int64_t>(quant_row_bytes(*quant_ops(type), n)); }

void encode_kv_row(DType type, const float* src, uint8_t* dst, int64_t n) {
  if (type == DType::kF16) {
    // Every level rounds finite values to the same bits; the fastest one the CPU runs.
    static const F16RowFn f16_row = f16_row_kernel(active_isa());
    f16_row(src, reinterpret_cast<uint16_t*>(dst), n);
    return;
  }
  quant_ops(type)->quantize(src, dst, n);
}

void decode_kv_row(DType type, const uint8_t* src, float* dst, int64_t n) {
  quant_ops(type)->dequantize(src, dst, n);
}

}  // namespace osprey::kernels
