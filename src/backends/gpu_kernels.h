// The GPU kernels, as kernelgen made them from src/backends/kernels/*.kern:
// each one's SPIR-V (for Vulkan) and WGSL (for WebGPU) come from the same
// description, so the back ends run the same arithmetic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace osprey::backends {

struct KernelSource {
  const char* name;
  int n_buffers;    // storage buffers, bound 0..n_buffers-1 in declaration order
  int param_bytes;  // 32-bit parameters (Vulkan push constants; a WebGPU uniform at binding n_buffers)
  int workgroup;    // threads per workgroup
  const uint32_t* spirv;
  size_t spirv_words;
  const char* wgsl;
};

// Every kernel (generated: gpu_kernels_table.cpp).
std::span<const KernelSource> gpu_kernels();

// The kernel named `name`, or null.
inline const KernelSource* find_gpu_kernel(std::string_view name) {
  for (const KernelSource& k : gpu_kernels())
    if (name == k.name) return &k;
  return nullptr;
}

}  // namespace osprey::backends
