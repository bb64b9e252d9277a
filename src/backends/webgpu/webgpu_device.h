// The WebGPU back end (webgpu_device.cpp), in the WebAssembly build: the
// browser's WebGPU runs the WGSL side of the kernel table.
#pragma once

#include <memory>

#include "backends/device.h"

namespace osprey::backends {

// The device the JavaScript side opened (loadModel's {device: 'webgpu'}),
// or an error naming why there is none.
Expected<std::unique_ptr<Device>> open_webgpu_device();

}  // namespace osprey::backends
