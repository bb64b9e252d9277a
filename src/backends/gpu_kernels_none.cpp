// A build without glslc or Vulkan headers has no GPU kernels.
#include "backends/gpu_kernels.h"

namespace osprey::backends {

std::span<const KernelSource> gpu_kernels() { return {}; }

}  // namespace osprey::backends
