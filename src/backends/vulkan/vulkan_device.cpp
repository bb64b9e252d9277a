// The Vulkan back end: one compute queue of the first device the loader
// offers, buffers in device memory (through a staging buffer when the host
// cannot map it), one pipeline per kernel made on first use, and a pass
// recorded into one command buffer with a barrier between dispatches.
//
// A pass is recorded once per shape. Its dispatches (kernels, buffers,
// parameters, grids) depend only on how many rows it has and how many want
// logits; what changes from pass to pass (positions, cache slots, block
// tables, the rows themselves) lives in buffers. So the dispatches are
// collected first, and a list met before replays its command buffer: decoding
// records once and then only submits.
#include "backends/vulkan/vulkan_device.h"

#include <vulkan/vulkan.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace osprey::backends {

namespace {

std::string vk_error(VkResult r) {
  switch (r) {
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "out of host memory";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "out of device memory";
    case VK_ERROR_INITIALIZATION_FAILED: return "initialization failed";
    case VK_ERROR_DEVICE_LOST: return "device lost";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "incompatible driver";
    case VK_ERROR_LAYER_NOT_PRESENT: return "layer not present";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "extension not present";
    case VK_ERROR_TOO_MANY_OBJECTS: return "too many objects";
    default: return "VkResult " + std::to_string(static_cast<int>(r));
  }
}

#define OSPREY_VK(call, what)                                                  \
  do {                                                                         \
    const VkResult vk_result_ = (call);                                        \
    if (vk_result_ != VK_SUCCESS) return Unsupported(std::string("vulkan: ") + (what) + ": " + vk_error(vk_result_)); \
  } while (0)

class VulkanDevice final : public Device {
 public:
  ~VulkanDevice() override {
    if (device_ != VK_NULL_HANDLE) {
      vkDeviceWaitIdle(device_);
      for (auto& [k, p] : pipelines_) {
        vkDestroyPipeline(device_, p.pipeline, nullptr);
        vkDestroyPipelineLayout(device_, p.layout, nullptr);
        vkDestroyDescriptorSetLayout(device_, p.set_layout, nullptr);
        vkDestroyShaderModule(device_, p.module, nullptr);
      }
      for (const Allocation& a : buffers_) free_allocation(a);
      if (descriptor_pool_ != VK_NULL_HANDLE) vkDestroyDescriptorPool(device_, descriptor_pool_, nullptr);
      for (const Recorded& r : recorded_) forget(r);
      if (queries_ != VK_NULL_HANDLE) vkDestroyQueryPool(device_, queries_, nullptr);
      if (fence_ != VK_NULL_HANDLE) vkDestroyFence(device_, fence_, nullptr);
      if (command_pool_ != VK_NULL_HANDLE) vkDestroyCommandPool(device_, command_pool_, nullptr);
      vkDestroyDevice(device_, nullptr);
    }
    if (instance_ != VK_NULL_HANDLE) vkDestroyInstance(instance_, nullptr);
  }

  Status init() {
    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "osprey";
    app.apiVersion = VK_API_VERSION_1_1;
    VkInstanceCreateInfo ici{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ici.pApplicationInfo = &app;
    const VkResult r = vkCreateInstance(&ici, nullptr, &instance_);
    if (r != VK_SUCCESS)
      return Unsupported("no Vulkan device found: the Vulkan loader found no driver (" + vk_error(r) +
                         "; install mesa-vulkan-drivers, or a GPU's driver)");
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(instance_, &n, nullptr);
    std::vector<VkPhysicalDevice> devices(n);
    vkEnumeratePhysicalDevices(instance_, &n, devices.data());
    // The first device with a compute queue, discrete and integrated GPUs
    // before virtual and CPU ones.
    std::string seen;
    int best_rank = -1;
    for (VkPhysicalDevice d : devices) {
      VkPhysicalDeviceProperties props;
      vkGetPhysicalDeviceProperties(d, &props);
      seen += (seen.empty() ? "" : ", ") + std::string(props.deviceName);
      uint32_t nq = 0;
      vkGetPhysicalDeviceQueueFamilyProperties(d, &nq, nullptr);
      std::vector<VkQueueFamilyProperties> queues(nq);
      vkGetPhysicalDeviceQueueFamilyProperties(d, &nq, queues.data());
      for (uint32_t q = 0; q < nq; ++q) {
        if (!(queues[q].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
        const int rank = props.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU     ? 3
                         : props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ? 2
                         : props.deviceType == VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU    ? 1
                                                                                      : 0;
        if (rank > best_rank) {
          best_rank = rank;
          physical_ = d;
          queue_family_ = q;
          timestamp_bits_ = queues[q].timestampValidBits;
          adapter_ = props.deviceName;
          limits_ = props.limits;
        }
        break;
      }
    }
    if (physical_ != VK_NULL_HANDLE) {
      // OSPREY_VULKAN_MAX_BUFFER=N acts as if the device bound at most N
      // bytes, so splitting weights and logits can be checked on any device.
      if (const char* cap = std::getenv("OSPREY_VULKAN_MAX_BUFFER"); cap != nullptr) {
        char* end = nullptr;
        const unsigned long long v = std::strtoull(cap, &end, 10);
        if (cap[0] < '0' || cap[0] > '9' || *end != '\0' || v < 4096)  // strtoull would take "-5" as a wrap-around
          return InvalidArgument(std::string("OSPREY_VULKAN_MAX_BUFFER=") + cap + " is not a byte count of 4096 or more");
        limits_.maxStorageBufferRange = static_cast<uint32_t>(std::min<unsigned long long>(v, limits_.maxStorageBufferRange));
      }
    }
    if (physical_ == VK_NULL_HANDLE)
      return Unsupported("no Vulkan device found: the loader saw " +
                         (seen.empty() ? std::string("no devices") : seen + ", none with a compute queue"));
    vkGetPhysicalDeviceMemoryProperties(physical_, &memory_);

    const float priority = 1.0f;
    VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qci.queueFamilyIndex = queue_family_;
    qci.queueCount = 1;
    qci.pQueuePriorities = &priority;
    VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci.queueCreateInfoCount = 1;
    dci.pQueueCreateInfos = &qci;
    OSPREY_VK(vkCreateDevice(physical_, &dci, nullptr, &device_), "creating the device " + adapter_);
    vkGetDeviceQueue(device_, queue_family_, 0, &queue_);

    VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pci.queueFamilyIndex = queue_family_;
    OSPREY_VK(vkCreateCommandPool(device_, &pci, nullptr, &command_pool_), "creating a command pool");
    VkCommandBufferAllocateInfo cai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    cai.commandPool = command_pool_;
    cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    cai.commandBufferCount = 1;
    OSPREY_VK(vkAllocateCommandBuffers(device_, &cai, &commands_), "allocating a command buffer");
    VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    OSPREY_VK(vkCreateFence(device_, &fci, nullptr, &fence_), "creating a fence");
    return grow_descriptor_pool(kMaxDispatches);
  }

  const char* kind() const override { return "vulkan"; }
  const std::string& adapter() const override { return adapter_; }
  int64_t bytes_allocated() const override { return bytes_; }
  int64_t max_buffer_bytes() const override { return static_cast<int64_t>(limits_.maxStorageBufferRange); }

  Expected<Buffer> alloc(int64_t bytes, const std::string& what) override {
    if (bytes <= 0 || bytes % 4 != 0) return InvalidArgument("vulkan: buffer " + what + " of " + std::to_string(bytes) + " bytes");
    if (static_cast<uint64_t>(bytes) > limits_.maxStorageBufferRange)
      return Unsupported("vulkan: " + what + " needs a buffer of " + std::to_string(bytes) + " bytes; " + adapter_ +
                         " binds at most " + std::to_string(limits_.maxStorageBufferRange));
    // Device-local memory the host can map if there is such (integrated GPUs,
    // CPU devices, resizable BAR); else device-local, reached by staging.
    Allocation a;
    OSPREY_TRY(make_buffer(bytes, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT,
                           {VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                            VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT},
                           what, a));
    buffers_.push_back(a);
    bytes_ += bytes;
    return Buffer{static_cast<int32_t>(buffers_.size() - 1)};
  }

  Status write(Buffer b, int64_t offset, const void* data, int64_t bytes) override {
    OSPREY_TRY(check_range(b, offset, bytes));
    const Allocation& a = buffers_[b.id];
    if (a.mapped != nullptr) {
      std::memcpy(static_cast<uint8_t*>(a.mapped) + offset, data, bytes);
      return Status::Ok();
    }
    return staged_copy(a, offset, const_cast<void*>(data), bytes, /*to_device=*/true);
  }

  Status read(Buffer b, int64_t offset, void* data, int64_t bytes) override {
    OSPREY_TRY(check_range(b, offset, bytes));
    const Allocation& a = buffers_[b.id];
    if (a.mapped != nullptr) {
      std::memcpy(data, static_cast<const uint8_t*>(a.mapped) + offset, bytes);
      return Status::Ok();
    }
    return staged_copy(a, offset, data, bytes, /*to_device=*/false);
  }

  Status prepare(const KernelSource& kernel) override {
    auto p = pipeline_for(kernel);
    return p.ok() ? Status::Ok() : p.status();
  }

  void begin() override {
    recording_ = true;
    error_ = Status::Ok();
    pending_.clear();
    key_.clear();
    timed_.clear();
    times_.clear();
  }

  int64_t passes_recorded() const override { return passes_recorded_; }

  bool time_dispatches(bool on) override {
    if (!on) {
      if (queries_ != VK_NULL_HANDLE) vkDestroyQueryPool(device_, queries_, nullptr);
      queries_ = VK_NULL_HANDLE;
      return true;
    }
    if (timestamp_bits_ == 0 || limits_.timestampPeriod <= 0) return false;
    if (queries_ != VK_NULL_HANDLE) return true;
    // One timestamp before the pass and one after each dispatch.
    VkQueryPoolCreateInfo qpi{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qpi.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qpi.queryCount = sets_capacity_ + 1;
    return vkCreateQueryPool(device_, &qpi, nullptr, &queries_) == VK_SUCCESS;
  }
  const std::vector<DispatchTime>& dispatch_times() const override { return times_; }

  void dispatch(const KernelSource& kernel, std::initializer_list<Buffer> buffers, const void* params,
                int param_bytes, uint32_t gx, uint32_t gy, uint32_t gz) override {
    if (!error_.ok()) return;
    if (static_cast<int>(buffers.size()) != kernel.n_buffers || param_bytes != kernel.param_bytes) {
      error_ = InvalidArgument(std::string("vulkan: kernel ") + kernel.name + " takes " +
                               std::to_string(kernel.n_buffers) + " buffers and " +
                               std::to_string(kernel.param_bytes) + " parameter bytes");
      return;
    }
    if (gx == 0 || gy == 0 || gz == 0) return;
    const uint32_t* max = limits_.maxComputeWorkGroupCount;
    if (gx > max[0] || gy > max[1] || gz > max[2]) {
      error_ = Unsupported(std::string("vulkan: kernel ") + kernel.name + " needs a grid of " + std::to_string(gx) +
                           "x" + std::to_string(gy) + "x" + std::to_string(gz) + ", beyond " + adapter_ + "'s limits");
      return;
    }
    auto pipeline = pipeline_for(kernel);
    if (!pipeline.ok()) {
      error_ = pipeline.status();
      return;
    }
    if (pending_.size() == kMaxDispatches) {
      error_ = Unsupported("vulkan: a pass of more than " + std::to_string(kMaxDispatches) + " dispatches");
      return;
    }
    if (buffers.size() > kMaxBindings) {
      error_ = Unsupported(std::string("vulkan: kernel ") + kernel.name + " binds more than " +
                           std::to_string(kMaxBindings) + " buffers");
      return;
    }
    Dispatch d{&kernel, *pipeline, {}, static_cast<int>(buffers.size()), {}, param_bytes, {gx, gy, gz}};
    int i = 0;
    for (Buffer b : buffers) {
      if (b.id < 0 || b.id >= static_cast<int32_t>(buffers_.size())) {
        error_ = InvalidArgument(std::string("vulkan: kernel ") + kernel.name + " given an unknown buffer");
        return;
      }
      d.buffers[i++] = b.id;
    }
    if (param_bytes > static_cast<int>(sizeof d.params)) {
      error_ = InvalidArgument(std::string("vulkan: kernel ") + kernel.name + " has more parameters than push constants hold");
      return;
    }
    std::memcpy(d.params, params, param_bytes);
    pending_.push_back(d);
    // The key: everything the recorded commands depend on.
    key_.append(reinterpret_cast<const char*>(&d.kernel), sizeof d.kernel);
    key_.append(reinterpret_cast<const char*>(d.buffers), sizeof(int32_t) * d.n_buffers);
    key_.append(static_cast<const char*>(params), param_bytes);
    key_.append(reinterpret_cast<const char*>(d.groups), sizeof d.groups);
  }

  Status finish() override {
    recording_ = false;
    if (!error_.ok()) return error_;
    if (queries_ != VK_NULL_HANDLE) return finish_timed();
    auto it = std::find_if(recorded_.begin(), recorded_.end(), [&](const Recorded& r) { return r.key == key_; });
    if (it == recorded_.end()) {
      // Record it; the least recently used list goes when there are too many.
      if (recorded_.size() == kMaxRecorded) {
        forget(recorded_.front());
        recorded_.erase(recorded_.begin());
      }
      Recorded r;
      r.key = key_;
      const uint32_t sets = static_cast<uint32_t>(std::max<size_t>(pending_.size(), 1));
      VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, sets * kMaxBindings};
      VkDescriptorPoolCreateInfo dpi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
      dpi.maxSets = sets;
      dpi.poolSizeCount = 1;
      dpi.pPoolSizes = &size;
      OSPREY_VK(vkCreateDescriptorPool(device_, &dpi, nullptr, &r.pool), "creating a descriptor pool");
      VkCommandBufferAllocateInfo cai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
      cai.commandPool = command_pool_;
      cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
      cai.commandBufferCount = 1;
      const VkResult made = vkAllocateCommandBuffers(device_, &cai, &r.commands);
      if (made != VK_SUCCESS) {
        vkDestroyDescriptorPool(device_, r.pool, nullptr);
        return Unsupported("vulkan: allocating a command buffer: " + vk_error(made));
      }
      VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
      vkBeginCommandBuffer(r.commands, &bi);
      const Status recorded = record(r.commands, r.pool);
      vkEndCommandBuffer(r.commands);
      if (!recorded.ok()) {
        forget(r);
        return recorded;
      }
      ++passes_recorded_;
      it = recorded_.insert(recorded_.end(), std::move(r));
    } else if (it + 1 != recorded_.end()) {
      std::rotate(it, it + 1, recorded_.end());  // most recently used last
      it = recorded_.end() - 1;
    }
    return submit_and_wait(it->commands);
  }

 private:
  static constexpr size_t kMaxDispatches = 8192;  // a few dozen per layer: 400 layers
  static constexpr int kMaxBindings = 8;
  static constexpr size_t kMaxRecorded = 16;  // pass shapes kept: decode at a few batch sizes, a prompt or two
  struct Pipeline {
    VkShaderModule module = VK_NULL_HANDLE;
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    VkPipeline pipeline = VK_NULL_HANDLE;
  };
  struct Dispatch {
    const KernelSource* kernel;
    const Pipeline* pipeline;
    int32_t buffers[kMaxBindings];
    int n_buffers;
    uint8_t params[128];  // Vulkan guarantees 128 bytes of push constants
    int param_bytes;
    uint32_t groups[3];
  };
  // A pass recorded once and replayed while its key comes again.
  struct Recorded {
    std::string key;
    VkCommandBuffer commands = VK_NULL_HANDLE;
    VkDescriptorPool pool = VK_NULL_HANDLE;
  };

  void forget(const Recorded& r) {
    if (r.commands != VK_NULL_HANDLE) vkFreeCommandBuffers(device_, command_pool_, 1, &r.commands);
    if (r.pool != VK_NULL_HANDLE) vkDestroyDescriptorPool(device_, r.pool, nullptr);
  }

  // A timed pass is recorded afresh, with a timestamp after each dispatch.
  Status finish_timed() {
    vkResetDescriptorPool(device_, descriptor_pool_, 0);
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    vkBeginCommandBuffer(commands_, &bi);
    vkCmdResetQueryPool(commands_, queries_, 0, sets_capacity_ + 1);
    vkCmdWriteTimestamp(commands_, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, queries_, 0);
    const Status recorded = record(commands_, descriptor_pool_);
    vkEndCommandBuffer(commands_);
    OSPREY_TRY(recorded);
    OSPREY_TRY(submit_and_wait(commands_));
    if (!timed_.empty()) {
      std::vector<uint64_t> ticks(timed_.size() + 1);
      OSPREY_VK(vkGetQueryPoolResults(device_, queries_, 0, static_cast<uint32_t>(ticks.size()), ticks.size() * 8,
                                      ticks.data(), 8, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
                "reading timestamps");
      const uint64_t mask = timestamp_bits_ >= 64 ? ~0ull : (1ull << timestamp_bits_) - 1;
      for (size_t i = 0; i < timed_.size(); ++i)
        times_.push_back({timed_[i], static_cast<double>((ticks[i + 1] - ticks[i]) & mask) * limits_.timestampPeriod * 1e-9});
    }
    return Status::Ok();
  }

  // The collected dispatches into `commands`, their descriptor sets from `pool`.
  Status record(VkCommandBuffer commands, VkDescriptorPool pool) {
    for (const Dispatch& d : pending_) {
      const Pipeline& p = *d.pipeline;
      VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
      ai.descriptorPool = pool;
      ai.descriptorSetCount = 1;
      ai.pSetLayouts = &p.set_layout;
      VkDescriptorSet set;
      OSPREY_VK(vkAllocateDescriptorSets(device_, &ai, &set), "allocating a descriptor set");
      VkDescriptorBufferInfo infos[kMaxBindings];
      VkWriteDescriptorSet writes[kMaxBindings];
      for (int i = 0; i < d.n_buffers; ++i) {
        infos[i] = {buffers_[d.buffers[i]].buffer, 0, VK_WHOLE_SIZE};
        writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        writes[i].dstSet = set;
        writes[i].dstBinding = static_cast<uint32_t>(i);
        writes[i].descriptorCount = 1;
        writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[i].pBufferInfo = &infos[i];
      }
      vkUpdateDescriptorSets(device_, static_cast<uint32_t>(d.n_buffers), writes, 0, nullptr);
      vkCmdBindPipeline(commands, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline);
      vkCmdBindDescriptorSets(commands, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &set, 0, nullptr);
      if (d.param_bytes > 0)
        vkCmdPushConstants(commands, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, d.param_bytes, d.params);
      vkCmdDispatch(commands, d.groups[0], d.groups[1], d.groups[2]);
      // Every dispatch sees what the ones before it wrote.
      VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
      barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
      barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
      vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                           &barrier, 0, nullptr, 0, nullptr);
      if (queries_ != VK_NULL_HANDLE) {
        // Dispatches run one after another (the barrier), so the time between
        // this timestamp and the one before is this dispatch's.
        timed_.push_back(d.kernel);
        vkCmdWriteTimestamp(commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, queries_, static_cast<uint32_t>(timed_.size()));
      }
    }
    return Status::Ok();
  }

  struct Allocation {
    VkBuffer buffer = VK_NULL_HANDLE;
    VkDeviceMemory memory = VK_NULL_HANDLE;
    void* mapped = nullptr;  // null: reached by staging
    int64_t bytes = 0;
  };
  Status check_range(Buffer b, int64_t offset, int64_t bytes) const {
    if (b.id < 0 || b.id >= static_cast<int32_t>(buffers_.size()) || offset < 0 || bytes < 0 ||
        offset + bytes > buffers_[b.id].bytes)
      return InvalidArgument("vulkan: a copy outside its buffer");
    if (recording_) return InvalidArgument("vulkan: a copy while a pass is being recorded");
    return Status::Ok();
  }

  // A buffer in memory of the first property set in `wanted` the device has.
  Status make_buffer(int64_t bytes, VkBufferUsageFlags usage, std::initializer_list<VkMemoryPropertyFlags> wanted,
                     const std::string& what, Allocation& a) {
    VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = static_cast<VkDeviceSize>(bytes);
    bci.usage = usage;
    bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    OSPREY_VK(vkCreateBuffer(device_, &bci, nullptr, &a.buffer), "creating buffer " + what);
    a.bytes = bytes;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(device_, a.buffer, &req);
    int type = -1;
    VkMemoryPropertyFlags got = 0;
    for (VkMemoryPropertyFlags flags : wanted) {
      for (uint32_t t = 0; t < memory_.memoryTypeCount && type < 0; ++t)
        if ((req.memoryTypeBits & (1u << t)) && (memory_.memoryTypes[t].propertyFlags & flags) == flags) {
          type = static_cast<int>(t);
          got = memory_.memoryTypes[t].propertyFlags;
        }
      if (type >= 0) break;
    }
    if (type < 0) {
      vkDestroyBuffer(device_, a.buffer, nullptr);
      return Unsupported("vulkan: " + adapter_ + " has no memory type for " + what);
    }
    VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.allocationSize = req.size;
    mai.memoryTypeIndex = static_cast<uint32_t>(type);
    const VkResult r = vkAllocateMemory(device_, &mai, nullptr, &a.memory);
    if (r != VK_SUCCESS) {
      vkDestroyBuffer(device_, a.buffer, nullptr);
      return Unsupported("vulkan: allocating " + std::to_string(bytes) + " bytes for " + what + ": " + vk_error(r));
    }
    vkBindBufferMemory(device_, a.buffer, a.memory, 0);
    if ((got & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) && (got & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT))
      OSPREY_VK(vkMapMemory(device_, a.memory, 0, VK_WHOLE_SIZE, 0, &a.mapped), "mapping " + what);
    return Status::Ok();
  }

  void free_allocation(const Allocation& a) {
    if (a.mapped != nullptr) vkUnmapMemory(device_, a.memory);
    vkDestroyBuffer(device_, a.buffer, nullptr);
    vkFreeMemory(device_, a.memory, nullptr);
  }

  // Host <-> device memory the host cannot map, through a mapped staging buffer.
  Status staged_copy(const Allocation& a, int64_t offset, void* data, int64_t bytes, bool to_device) {
    if (bytes == 0) return Status::Ok();
    Allocation staging;
    OSPREY_TRY(make_buffer((bytes + 3) / 4 * 4, VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                           {VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT}, "staging",
                           staging));
    if (to_device) std::memcpy(staging.mapped, data, bytes);
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    vkBeginCommandBuffer(commands_, &bi);
    VkBufferCopy region{to_device ? 0u : static_cast<VkDeviceSize>(offset),
                        to_device ? static_cast<VkDeviceSize>(offset) : 0u, static_cast<VkDeviceSize>(bytes)};
    vkCmdCopyBuffer(commands_, to_device ? staging.buffer : a.buffer, to_device ? a.buffer : staging.buffer, 1, &region);
    vkEndCommandBuffer(commands_);
    const Status s = submit_and_wait(commands_);
    if (s.ok() && !to_device) std::memcpy(data, staging.mapped, bytes);
    free_allocation(staging);
    return s;
  }

  Status submit_and_wait(VkCommandBuffer commands) {
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &commands;
    OSPREY_VK(vkQueueSubmit(queue_, 1, &si, fence_), "submitting a pass");
    OSPREY_VK(vkWaitForFences(device_, 1, &fence_, VK_TRUE, UINT64_MAX), "waiting for a pass");
    vkResetFences(device_, 1, &fence_);
    return Status::Ok();
  }

  Status grow_descriptor_pool(uint32_t sets) {
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, sets * 8};
    VkDescriptorPoolCreateInfo dpi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    dpi.maxSets = sets;
    dpi.poolSizeCount = 1;
    dpi.pPoolSizes = &size;
    OSPREY_VK(vkCreateDescriptorPool(device_, &dpi, nullptr, &descriptor_pool_), "creating a descriptor pool");
    sets_capacity_ = sets;
    return Status::Ok();
  }

  Expected<const Pipeline*> pipeline_for(const KernelSource& k) {
    auto it = pipelines_.find(k.name);
    if (it != pipelines_.end()) return &it->second;
    Pipeline p;
    VkShaderModuleCreateInfo smi{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    smi.codeSize = k.spirv_words * 4;
    smi.pCode = k.spirv;
    OSPREY_VK(vkCreateShaderModule(device_, &smi, nullptr, &p.module), std::string("loading kernel ") + k.name);
    std::vector<VkDescriptorSetLayoutBinding> bindings(k.n_buffers);
    for (int i = 0; i < k.n_buffers; ++i)
      bindings[i] = {static_cast<uint32_t>(i), VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
    VkDescriptorSetLayoutCreateInfo dli{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    dli.bindingCount = static_cast<uint32_t>(bindings.size());
    dli.pBindings = bindings.data();
    OSPREY_VK(vkCreateDescriptorSetLayout(device_, &dli, nullptr, &p.set_layout), "a descriptor set layout");
    VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, static_cast<uint32_t>(k.param_bytes)};
    VkPipelineLayoutCreateInfo pli{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    pli.setLayoutCount = 1;
    pli.pSetLayouts = &p.set_layout;
    pli.pushConstantRangeCount = k.param_bytes > 0 ? 1 : 0;
    pli.pPushConstantRanges = &range;
    OSPREY_VK(vkCreatePipelineLayout(device_, &pli, nullptr, &p.layout), "a pipeline layout");
    VkComputePipelineCreateInfo cpi{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    cpi.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
    cpi.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    cpi.stage.module = p.module;
    cpi.stage.pName = "main";
    cpi.layout = p.layout;
    OSPREY_VK(vkCreateComputePipelines(device_, VK_NULL_HANDLE, 1, &cpi, nullptr, &p.pipeline),
              std::string("building kernel ") + k.name);
    return &(pipelines_[k.name] = p);
  }

  VkInstance instance_ = VK_NULL_HANDLE;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  VkPhysicalDeviceLimits limits_{};
  VkPhysicalDeviceMemoryProperties memory_{};
  std::string adapter_;
  VkCommandPool command_pool_ = VK_NULL_HANDLE;
  VkCommandBuffer commands_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  VkDescriptorPool descriptor_pool_ = VK_NULL_HANDLE;
  uint32_t sets_capacity_ = 0;  // of descriptor_pool_, for timed passes
  uint32_t timestamp_bits_ = 0;
  VkQueryPool queries_ = VK_NULL_HANDLE;  // while timing dispatches
  std::vector<const KernelSource*> timed_;
  std::vector<DispatchTime> times_;
  std::vector<Allocation> buffers_;
  std::unordered_map<std::string, Pipeline> pipelines_;
  int64_t bytes_ = 0;
  bool recording_ = false;
  Status error_ = Status::Ok();
  std::vector<Dispatch> pending_;      // the pass being collected
  std::string key_;                    // and its key
  std::vector<Recorded> recorded_;     // least recently used first
  int64_t passes_recorded_ = 0;
};

}  // namespace

Expected<std::unique_ptr<Device>> open_vulkan_device() {
  auto d = std::make_unique<VulkanDevice>();
  OSPREY_TRY(d->init());
  return std::unique_ptr<Device>(std::move(d));
}

}  // namespace osprey::backends
