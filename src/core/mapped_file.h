// A read-only memory mapping of a whole file. Model weights are used in place
// from the mapping, so loading costs no copy and pages come in on demand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "osprey/status.h"

namespace osprey {

class MappedFile {
 public:
  // The file at `path`, or the buffer adopted under that name.
  static Expected<std::shared_ptr<MappedFile>> open(const std::string& path);
  // Where there is no file system to map from (a browser holds the model in
  // memory it read from a File), `open(name)` returns these bytes instead of
  // a mapping. `data` comes from malloc and is freed with the last user; the
  // name is free to reuse after `forget(name)`, which keeps open copies alive.
  static void adopt(const std::string& name, uint8_t* data, size_t size);
  static void forget(const std::string& name);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool adopted_ = false;  // freed, not unmapped
};

}  // namespace osprey
