#include "backends/device.h"

#ifdef OSPREY_HAVE_VULKAN
#include "backends/vulkan/vulkan_device.h"
#endif
#ifdef OSPREY_HAVE_WEBGPU
#include "backends/webgpu/webgpu_device.h"
#endif

namespace osprey::backends {

const std::vector<std::string>& device_names() {
  static const std::vector<std::string> names = {"cpu", "vulkan", "webgpu"};
  return names;
}

Expected<std::unique_ptr<Device>> open_device(const std::string& kind) {
  if (kind == "vulkan") {
#ifdef OSPREY_HAVE_VULKAN
    return open_vulkan_device();
#else
    return Unsupported("this build of osprey has no Vulkan back end (CMake found no Vulkan headers or glslc; "
                       "install libvulkan-dev and glslc and build again)");
#endif
  }
  if (kind == "webgpu") {
#ifdef OSPREY_HAVE_WEBGPU
    return open_webgpu_device();
#else
    return Unsupported("this build of osprey has no WebGPU back end: WebGPU runs in the WebAssembly build, in a "
                       "browser (web/, or loadModel(file, {device: 'webgpu'}) in a Web Worker)");
#endif
  }
  std::string known;
  for (const std::string& n : device_names()) known += (known.empty() ? "" : ", ") + n;
  return InvalidArgument("unknown device \"" + kind + "\" (devices: " + known + ")");
}

}  // namespace osprey::backends
