// The WebGPU back end. WebGPU answers only through promises, and the
// forward pass waits for its results, so the device lives in a Worker of its
// own (src/wasm/webgpu_proxy.js): each call here posts one request there and
// blocks this thread until the answer is in shared memory. A pass is one
// request: the dispatches are recorded here as a list of words in the
// module's memory, which the device worker reads in place.
#include "backends/webgpu/webgpu_device.h"

#include <emscripten.h>

#include <algorithm>
#include <cstring>
#include <vector>

// The JavaScript half (webgpu_proxy.js): `op` with up to four numbers.
// Returns 0, or 1 with the error in `reply`.
EM_JS(int, osprey_webgpu_request, (int op, double a, double b, double c, double d, char* reply, int cap), {
  return Module.webgpuRequest(op, a, b, c, d, reply, cap);
});

// The adapter's name, or -1 when no device was opened from JavaScript.
EM_JS(int, osprey_webgpu_adapter, (char* out, int cap), {
  if (!Module.webgpuProxy || !Module.webgpuProxy.adapter) return -1;
  stringToUTF8(Module.webgpuProxy.adapter, out, cap);
  return 0;
});

// The largest storage buffer the opened device binds.
EM_JS(double, osprey_webgpu_max_buffer, (), { return Module.webgpuProxy ? Module.webgpuProxy.maxBuffer : 0; });

namespace osprey::backends {

namespace {

enum Op { kAlloc = 1, kWrite = 2, kRead = 3, kPrepare = 4, kSubmit = 5, kRelease = 6, kTime = 7 };

class WebGpuDevice final : public Device {
 public:
  WebGpuDevice(std::string adapter, int64_t max_buffer) : adapter_(std::move(adapter)), max_buffer_(max_buffer) {}
  ~WebGpuDevice() override { static_cast<void>(request(kRelease)); }

  const char* kind() const override { return "webgpu"; }
  const std::string& adapter() const override { return adapter_; }

  Expected<Buffer> alloc(int64_t bytes, const std::string& what) override {
    const Buffer b{next_id_++};
    if (Status s = request(kAlloc, b.id, static_cast<double>(std::max<int64_t>(bytes, 4))); !s.ok())
      return Unsupported("webgpu: " + what + " (" + std::to_string(bytes) + " bytes): " + s.message());
    bytes_ += bytes;
    return b;
  }
  Status write(Buffer b, int64_t offset, const void* data, int64_t bytes) override {
    return request(kWrite, b.id, static_cast<double>(offset), address(data), static_cast<double>(bytes));
  }
  Status read(Buffer b, int64_t offset, void* data, int64_t bytes) override {
    return request(kRead, b.id, static_cast<double>(offset), address(data), static_cast<double>(bytes));
  }
  int64_t bytes_allocated() const override { return bytes_; }
  int64_t max_buffer_bytes() const override { return max_buffer_; }

  Status prepare(const KernelSource& kernel) override {
    const size_t index = index_of(kernel);
    if (index < prepared_.size() && prepared_[index]) return Status::Ok();
    if (Status s = request(kPrepare, static_cast<double>(index), address(kernel.wgsl),
                           static_cast<double>(std::strlen(kernel.wgsl)), kernel.param_bytes);
        !s.ok())
      return Unsupported(std::string("webgpu: kernel ") + kernel.name + ": " + s.message());
    if (prepared_.size() <= index) prepared_.resize(index + 1, false);
    prepared_[index] = true;
    return Status::Ok();
  }

  void begin() override {
    words_.clear();
    kernels_.clear();
    error_ = Status::Ok();
  }
  // One record per dispatch: kernel, buffer count, buffer ids, parameter
  // word count, parameters, workgroups x, y, z.
  void dispatch(const KernelSource& kernel, std::initializer_list<Buffer> buffers, const void* params, int param_bytes,
                uint32_t groups_x, uint32_t groups_y, uint32_t groups_z) override {
    if (!error_.ok()) return;
    if (Status s = prepare(kernel); !s.ok()) {
      error_ = s;
      return;
    }
    kernels_.push_back(&kernel);
    words_.push_back(static_cast<int32_t>(index_of(kernel)));
    words_.push_back(static_cast<int32_t>(buffers.size()));
    for (const Buffer& b : buffers) words_.push_back(b.id);
    const int n_params = param_bytes / 4;
    words_.push_back(n_params);
    const size_t at = words_.size();
    words_.resize(at + n_params);
    if (n_params > 0) std::memcpy(words_.data() + at, params, static_cast<size_t>(n_params) * 4);
    words_.push_back(static_cast<int32_t>(groups_x));
    words_.push_back(static_cast<int32_t>(groups_y));
    words_.push_back(static_cast<int32_t>(groups_z));
  }
  Status finish() override {
    times_.clear();
    if (!error_.ok()) return error_;
    if (words_.empty()) return Status::Ok();
    // Timed, the device worker writes each dispatch's seconds here.
    seconds_.assign(timing_ ? kernels_.size() : 0, 0.0);
    OSPREY_TRY(request(kSubmit, address(words_.data()), static_cast<double>(words_.size()),
                       timing_ ? address(seconds_.data()) : 0));
    for (size_t i = 0; i < seconds_.size(); ++i) times_.push_back({kernels_[i], seconds_[i]});
    return Status::Ok();
  }

  // The device worker opened the device with timestamp queries where the
  // adapter has them; without, it refuses and nothing is timed.
  bool time_dispatches(bool on) override {
    if (on == timing_) return true;
    if (!request(kTime, on ? 1 : 0).ok()) return !on;
    timing_ = on;
    times_.clear();
    return true;
  }
  const std::vector<DispatchTime>& dispatch_times() const override { return times_; }

 private:
  static double address(const void* p) { return static_cast<double>(reinterpret_cast<uintptr_t>(p)); }
  static size_t index_of(const KernelSource& k) { return static_cast<size_t>(&k - gpu_kernels().data()); }

  Status request(Op op, double a = 0, double b = 0, double c = 0, double d = 0) {
    char reply[2048];
    reply[0] = 0;
    if (osprey_webgpu_request(op, a, b, c, d, reply, sizeof(reply)) == 0) return Status::Ok();
    // A browser may reject with an empty reason; the request still gets named.
    if (reply[0] == 0) return Unsupported("the WebGPU device worker failed request " + std::to_string(op) + " and gave no reason");
    return Unsupported(reply);
  }

  std::string adapter_;
  int64_t max_buffer_;
  int32_t next_id_ = 0;
  int64_t bytes_ = 0;
  std::vector<bool> prepared_;
  std::vector<int32_t> words_;
  std::vector<const KernelSource*> kernels_;  // the pass's dispatches, in order
  bool timing_ = false;
  std::vector<double> seconds_;
  std::vector<DispatchTime> times_;
  Status error_;
};

}  // namespace

Expected<std::unique_ptr<Device>> open_webgpu_device() {
  char adapter[512];
  if (osprey_webgpu_adapter(adapter, sizeof(adapter)) != 0)
    return Unsupported(
        "no WebGPU device is open: load the model with {device: 'webgpu'} from the JavaScript API, which opens it");
  return std::unique_ptr<Device>(new WebGpuDevice(adapter, static_cast<int64_t>(osprey_webgpu_max_buffer())));
}

}  // namespace osprey::backends
