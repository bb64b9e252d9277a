// Anonymous memory in whole pages, asking the kernel for transparent huge
// pages: weights repacked at load live here. A decode step reads every weight
// once, and with 4 KiB pages that is one TLB miss per 4 KiB; 2 MiB pages make
// those misses all but vanish.
#pragma once

#include <cstddef>
#include <cstdint>

#include "osprey/status.h"

namespace osprey {

class PageBuffer {
 public:
  static Expected<PageBuffer> allocate(size_t bytes);
  PageBuffer() = default;
  PageBuffer(PageBuffer&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr, o.size_ = 0; }
  PageBuffer& operator=(PageBuffer&& o) noexcept;
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;
  ~PageBuffer();

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Tells the kernel that the whole pages inside [p, p + n) of a read-only file
// mapping are not needed for now, so they stop counting towards this process's
// memory. Reading them later faults them back in from the file, unchanged.
void release_mapped_pages(const void* p, size_t n);

}  // namespace osprey
