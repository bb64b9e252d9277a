// GGUF (v2, v3): the model file format shared with llama.cpp.
//
// Layout: magic "GGUF", version u32, tensor count u64, metadata count u64,
// the metadata key/values, the tensor infos, padding to `general.alignment`
// (default 32), then the tensor data. Every count, length, dimension and
// offset read from a file is checked against the file's size before use:
// files are treated as hostile.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "osprey/status.h"

namespace osprey {

enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6,
  kBool = 7, kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
const char* gguf_type_name(GgufType t);
bool gguf_type_is_integer(GgufType t);

// One metadata value. Integers of every width are held in `i` (u64 by bit
// pattern), floats in `f`; arrays keep their element type so that a file
// written back is identical to the one read.
struct GgufValue {
  GgufType type = GgufType::kU32;
  int64_t i = 0;
  double f = 0;
  std::string s;
  // Arrays: exactly one of these is filled, according to elem_type.
  GgufType elem_type = GgufType::kU32;
  std::vector<int64_t> ints;  // integers and bools
  std::vector<double> floats;
  std::vector<std::string> strings;
  std::vector<GgufValue> nested;  // arrays of arrays

  static GgufValue u32(uint32_t v) { return scalar_int(GgufType::kU32, v); }
  static GgufValue i32(int32_t v) { return scalar_int(GgufType::kI32, v); }
  static GgufValue u64(uint64_t v) { return scalar_int(GgufType::kU64, static_cast<int64_t>(v)); }
  static GgufValue boolean(bool v) { return scalar_int(GgufType::kBool, v ? 1 : 0); }
  static GgufValue f32(float v);
  static GgufValue str(std::string v);
  static GgufValue string_array(std::vector<std::string> v);
  static GgufValue int_array(GgufType elem, std::vector<int64_t> v);
  static GgufValue float_array(std::vector<double> v);  // stored as f32
  static GgufValue scalar_int(GgufType t, int64_t v);

  size_t array_size() const;
  std::string to_display(size_t max_items = 8) const;  // for `osprey inspect`
  bool operator==(const GgufValue&) const = default;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // dims[0] is the contiguous (row) dimension
  DType type = DType::kF32;
  uint64_t offset = 0;        // from the start of the data section
  uint64_t n_bytes = 0;
  int64_t n_elements = 0;
  const uint8_t* data = nullptr;  // points into the mapping

  int64_t rows() const;  // product of dims[1..]
};

class GgufFile {
 public:
  // Maps and parses a file. The tensor data stays in the mapping.
  static Expected<GgufFile> open(const std::string& path);
  // Parses bytes owned by the caller (fuzzing, tests). `name` is used in errors.
  static Expected<GgufFile> parse(const uint8_t* data, size_t size, const std::string& name);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;

  // Typed access. The one-argument forms fail when the key is missing; the
  // forms with a fallback return it then. Both fail on a wrong type, naming it.
  Expected<int64_t> get_int(std::string_view key) const;
  Expected<int64_t> get_int(std::string_view key, int64_t fallback) const;
  Expected<double> get_float(std::string_view key) const;
  Expected<double> get_float(std::string_view key, double fallback) const;
  Expected<std::string> get_string(std::string_view key) const;
  Expected<std::string> get_string(std::string_view key, std::string fallback) const;
  Expected<bool> get_bool(std::string_view key, bool fallback) const;
  // The array under `key` whose elements are strings (kString), integers
  // (any integer type or bool) or floats (kF32/kF64), as asked.
  Expected<const GgufValue*> get_array(std::string_view key, GgufType want) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;

 private:
  friend class GgufParser;
  std::shared_ptr<MappedFile> mapping_;
  std::string path_;
  uint64_t file_size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<GgufTensorInfo> tensors_;
};

// Builds a GGUF file in memory and writes it atomically (temp file + rename),
// so an interrupted write never leaves a half file under the final name.
class GgufWriter {
 public:
  void set(std::string key, GgufValue value);  // replaces a key already set, keeps order
  void remove(std::string_view key);
  void set_alignment(uint32_t alignment);
  // `bytes` must hold exactly the encoded tensor of `type` and `dims`.
  Status add_tensor(std::string name, DType type, std::vector<int64_t> dims, std::vector<uint8_t> bytes);
  // A tensor whose bytes are made only when the streamed write reaches it,
  // so that a file larger than memory can be written.
  Status declare_tensor(std::string name, DType type, std::vector<int64_t> dims);
  Status write(const std::string& path) const;
  // Writes the file, asking produce(i, bytes) for the bytes of the i-th
  // declared tensor, in order (tensors added with bytes are written as they
  // are). A failed produce stops the write and leaves no file behind.
  using Producer = std::function<Status(size_t declared_index, std::vector<uint8_t>& bytes)>;
  Status write(const std::string& path, const Producer& produce) const;
  // The whole file as bytes (tests, fuzz corpus).
  std::vector<uint8_t> to_bytes() const;

 private:
  std::vector<uint8_t> header_bytes() const;
  Expected<uint64_t> checked_bytes(const std::string& name, DType type, const std::vector<int64_t>& dims) const;
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> dims;
    uint64_t n_bytes;
    bool declared;  // bytes come from the producer
    std::vector<uint8_t> bytes;
  };
  uint32_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace osprey
