// The Vulkan back end (vulkan_device.cpp), built when CMake finds Vulkan and glslc.
#pragma once

#include <memory>

#include "backends/device.h"

namespace osprey::backends {

Expected<std::unique_ptr<Device>> open_vulkan_device();

}  // namespace osprey::backends
