// safetensors: the weight format of Hugging Face folders.
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON
// {"__metadata__": {string: string}, NAME: {"dtype", "shape", "data_offsets"}},
// then the data; each tensor's [begin, end) offsets count from the data's
// start. Shapes are row-major as PyTorch writes them: shape.back() is the
// contiguous dimension (GGUF lists dims the other way round).
//
// Every length, offset and shape is checked against the file before use and
// files are treated as hostile: a header longer than the file, nesting deeper
// than the format needs, an unknown dtype, a byte count that disagrees with
// shape and dtype, tensors that overlap or leave holes: each is an error
// naming the file and the tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "osprey/status.h"

namespace osprey {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;            // as written: "BF16", "F32", "I64", ...
  std::optional<DType> type;    // F32, F16 and BF16; nullopt for the dtypes osprey does not compute in
  std::vector<int64_t> shape;   // row-major
  const uint8_t* data = nullptr;
  uint64_t n_bytes = 0;
  int64_t n_elements = 0;
  std::string file;             // the shard it lives in
};

class SafetensorsFile {
 public:
  static Expected<SafetensorsFile> open(const std::string& path);
  // Parses bytes owned by the caller (fuzzing, tests); `name` is used in errors.
  static Expected<SafetensorsFile> parse(const uint8_t* data, size_t size, const std::string& name);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const SafetensorsTensor* find(std::string_view name) const;

 private:
  std::shared_ptr<MappedFile> mapping_;
  std::string path_;
  std::vector<SafetensorsTensor> tensors_;  // in data order
  std::map<std::string, std::string> metadata_;
};

// The weights of a folder: model.safetensors, or the shards that
// model.safetensors.index.json maps every tensor to. A shard the index names
// but the folder lacks, a shard name that leaves the folder, a tensor the
// index places in a shard that does not hold it, or one name in two shards
// is an error naming it.
class SafetensorsModel {
 public:
  static Expected<SafetensorsModel> open(const std::string& dir);
  SafetensorsModel(SafetensorsModel&&) = default;
  SafetensorsModel& operator=(SafetensorsModel&&) = default;
  // by_name_ points into shards_, so a copy would point into the original.
  SafetensorsModel(const SafetensorsModel&) = delete;
  SafetensorsModel& operator=(const SafetensorsModel&) = delete;

  const std::vector<SafetensorsFile>& shards() const { return shards_; }
  // Every tensor of every shard, by name.
  const std::map<std::string, const SafetensorsTensor*>& tensors() const { return by_name_; }
  const SafetensorsTensor* find(std::string_view name) const;
  uint64_t total_bytes() const;

 private:
  SafetensorsModel() = default;
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, const SafetensorsTensor*> by_name_;
};

// Element size of a safetensors dtype name, or 0 for an unknown one.
int safetensors_dtype_size(std::string_view dtype);

}  // namespace osprey
