// Writes safetensors files: an 8-byte header length, the JSON header (each
// tensor's dtype, shape and byte range, in the order declared), then the
// bytes. Tensors are produced one at a time, so a file larger than memory
// can be written; the file appears whole or not at all.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "osprey/status.h"

namespace osprey {

class SafetensorsWriter {
 public:
  // dtype as safetensors spells it ("F32", "F16", "BF16"); shape row-major.
  Status declare(std::string name, std::string dtype, std::vector<int64_t> shape);
  void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }
  size_t size() const { return tensors_.size(); }
  uint64_t data_bytes() const { return data_bytes_; }

  // produce(i, bytes) fills the i-th declared tensor's bytes.
  using Producer = std::function<Status(size_t index, std::vector<uint8_t>& bytes)>;
  Status write(const std::string& path, const Producer& produce) const;

 private:
  struct Tensor {
    std::string name, dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
  };
  std::vector<Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
  uint64_t data_bytes_ = 0;
};

}  // namespace osprey
