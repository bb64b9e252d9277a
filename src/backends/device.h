// The device seam: what a back end other than the CPU offers the models
// layer. A device owns its buffers (weights uploaded once, the KV cache and
// activations stay on it) and runs the kernels of gpu_kernels.h on them. A
// forward pass is recorded as a list of dispatches between begin() and
// finish(); the device orders each dispatch after the ones before it.
//
// Which weight types and model structures a device runs is decided by the
// pass written against it (models/device_pass.h), which refuses a model it
// cannot run with the missing pieces named, rather than sending pieces of
// it back to the CPU.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "backends/gpu_kernels.h"
#include "osprey/status.h"

namespace osprey::backends {

// One dispatch of a finished pass and the time it took on the device.
struct DispatchTime {
  const KernelSource* kernel;
  double seconds;
};

// A buffer a device owns, by number.
struct Buffer {
  int32_t id = -1;
  bool valid() const { return id >= 0; }
};

class Device {
 public:
  virtual ~Device() = default;

  // "vulkan", "webgpu".
  virtual const char* kind() const = 0;
  // The adapter, as its driver names it ("llvmpipe (LLVM 15.0.6, 256 bits)").
  virtual const std::string& adapter() const = 0;

  // A buffer of `bytes` (a multiple of 4); `what` names it in errors.
  virtual Expected<Buffer> alloc(int64_t bytes, const std::string& what) = 0;
  // Copies to and from a buffer, outside a recorded pass.
  virtual Status write(Buffer b, int64_t offset, const void* data, int64_t bytes) = 0;
  virtual Status read(Buffer b, int64_t offset, void* data, int64_t bytes) = 0;
  virtual int64_t bytes_allocated() const = 0;
  // The largest buffer a kernel can bind (larger weights are split by rows).
  virtual int64_t max_buffer_bytes() const = 0;

  // Builds a kernel's pipeline now rather than at its first dispatch
  // (a driver may compile it then, which a first pass should not pay for).
  virtual Status prepare(const KernelSource& kernel) = 0;

  // Records a pass: dispatches run in the order given, each seeing what the
  // ones before it wrote. `buffers` bind in the kernel's declaration order;
  // `params` are its 32-bit parameters, in order.
  virtual void begin() = 0;
  virtual void dispatch(const KernelSource& kernel, std::initializer_list<Buffer> buffers, const void* params,
                        int param_bytes, uint32_t groups_x, uint32_t groups_y = 1, uint32_t groups_z = 1) = 0;
  // Submits what was recorded and waits for it.
  virtual Status finish() = 0;

  // How many passes were recorded, as opposed to replayed: a device that
  // keeps a pass's commands per shape records once and then only submits
  // (-1: this device records every pass).
  virtual int64_t passes_recorded() const { return -1; }

  // Times every dispatch of the passes that follow (bench). Returns false,
  // timing nothing, when the device cannot (no timestamp queries).
  virtual bool time_dispatches(bool on) { return !on; }
  // The last finished pass's dispatches, in order, while timing is on.
  virtual const std::vector<DispatchTime>& dispatch_times() const {
    static const std::vector<DispatchTime> none;
    return none;
  }
};

// The devices --device names: "cpu" (no Device: the CPU kernels), "vulkan",
// "webgpu" (in the WebAssembly build).
const std::vector<std::string>& device_names();

// Opens the first device of `kind` ("vulkan", "webgpu"). Fails naming what it found
// when there is none ("no Vulkan device found ..."), or when this build
// lacks the back end.
Expected<std::unique_ptr<Device>> open_device(const std::string& kind);

}  // namespace osprey::backends
