#include "backends/weight_layout.h"

#include <cstring>

#include "core/fp16.h"

namespace osprey::backends {

namespace {

// Block formats with an fp16 scale ahead of `quant_bytes` of quants: the
// scales move to the front as f32, so the quants start on word boundaries.
std::vector<uint32_t> split_scales(const uint8_t* data, int64_t n_blocks, int quant_bytes) {
  const int block_bytes = 2 + quant_bytes;
  std::vector<uint32_t> out(n_blocks + n_blocks * quant_bytes / 4);
  uint8_t* quants = reinterpret_cast<uint8_t*>(out.data() + n_blocks);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* blk = data + b * block_bytes;
    uint16_t d;
    std::memcpy(&d, blk, 2);
    const float scale = fp16_to_fp32(d);
    std::memcpy(&out[b], &scale, 4);
    std::memcpy(quants + b * quant_bytes, blk + 2, quant_bytes);
  }
  return out;
}

}  // namespace

const KernelSource* matrix_kernel(DType type) {
  switch (type) {
    case DType::kF32: return find_gpu_kernel("mat_f32");
    case DType::kF16: return find_gpu_kernel("mat_f16");
    case DType::kQ8_0: return find_gpu_kernel("mat_q8_0");
    case DType::kQ4_0: return find_gpu_kernel("mat_q4_0");
    default: return nullptr;
  }
}

std::vector<uint32_t> pack_weights(DType type, const uint8_t* data, int64_t n_values) {
  switch (type) {
    case DType::kQ8_0: return split_scales(data, n_values / 32, 32);
    case DType::kQ4_0: return split_scales(data, n_values / 32, 16);
    case DType::kF16: {
      std::vector<uint32_t> out(n_values / 2);
      std::memcpy(out.data(), data, n_values * 2);
      return out;
    }
    case DType::kF32: {
      std::vector<uint32_t> out(n_values);
      std::memcpy(out.data(), data, n_values * 4);
      return out;
    }
    default: return {};
  }
}

}  // namespace osprey::backends
