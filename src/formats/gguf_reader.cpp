#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "core/utf8.h"
#include "formats/gguf.h"

namespace osprey {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr uint64_t kMaxStringBytes = 64ull << 20;
constexpr uint64_t kMaxTensors = 1u << 20;
constexpr uint64_t kMaxKeys = 1u << 20;
constexpr int kMaxDims = 4;
constexpr int kMaxArrayDepth = 4;
constexpr uint64_t kMaxTensorNameBytes = 256;

size_t min_encoded_size(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    case GgufType::kString: return 8;   // the length field alone
    case GgufType::kArray: return 12;   // element type + count
  }
  return 1;
}

}  // namespace

// Reads the byte stream front to back. Every read is bounds-checked; every
// error names the file, the field being read and the byte offset.
class GgufParser {
 public:
  GgufParser(const uint8_t* data, size_t size, std::string name)
      : data_(data), size_(size), name_(std::move(name)) {}

  Status parse(GgufFile& out);

 private:
  Status fail(const std::string& what, size_t at) const {
    return CorruptFile(name_ + ": corrupt GGUF at byte " + std::to_string(at) + ": " + what);
  }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  Status read_raw(T& v, const char* field) {
    if (remaining() < sizeof(T))
      return fail(std::string("file ends while reading ") + field + " (truncated file?)", pos_);
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status read_string(std::string& s, const std::string& field, uint64_t max_len = kMaxStringBytes);
  Status read_value(GgufType type, GgufValue& v, const std::string& field, int depth);
  Status read_array(GgufValue& v, const std::string& field, int depth);
  Status read_tensor_info(GgufTensorInfo& t, uint64_t index);
  Status check_tensors(GgufFile& out);

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string name_;
};

Status GgufParser::read_string(std::string& s, const std::string& field, uint64_t max_len) {
  const size_t at = pos_;
  uint64_t len = 0;
  OSPREY_TRY(read_raw(len, field.c_str()));
  if (len > max_len)
    return fail(field + ": string length " + std::to_string(len) + " exceeds the limit of " +
                    std::to_string(max_len),
                at);
  if (len > remaining())
    return fail(field + ": string length " + std::to_string(len) + " runs past the end of the file", at);
  s.assign(reinterpret_cast<const char*>(data_ + pos_), len);
  pos_ += len;
  return Status::Ok();
}

Status GgufParser::read_value(GgufType type, GgufValue& v, const std::string& field, int depth) {
  v.type = type;
  switch (type) {
    case GgufType::kU8: { uint8_t x = 0; OSPREY_TRY(read_raw(x, field.c_str())); v.i = x; break; }
    case GgufType::kI8: { int8_t x = 0; OSPREY_TRY(read_raw(x, field.c_str())); v.i = x; break; }
    case GgufType::kU16: { uint16_t x = 0; OSPREY_TRY(read_raw(x, field.c_str())); v.i = x; break; }
    case GgufType::kI16: { int16_t x = 0; OSPREY_TRY(read_raw(x, field.c_str())); v.i = x; break; }
    case GgufType::kU32: { uint32_t x = 0; OSPREY_TRY(read_raw(x, field.c_str())); v.i = x; break; }
    case GgufType::kI32: { int32_t x = 0; OSPREY_TRY(read_raw(x, field.c_str())); v.i = x; break; }
    case GgufType::kU64: { uint64_t x = 0; OSPREY_TRY(read_raw(x, field.c_str())); v.i = static_cast<int64_t>(x); break; }
    case GgufType::kI64: { int64_t x = 0; OSPREY_TRY(read_raw(x, field.c_str())); v.i = x; break; }
    case GgufType::kF32: { float x = 0; OSPREY_TRY(read_raw(x, field.c_str())); v.f = x; break; }
    case GgufType::kF64: { double x = 0; OSPREY_TRY(read_raw(x, field.c_str())); v.f = x; break; }
    case GgufType::kBool: {
      const size_t at = pos_;
      uint8_t x;
      OSPREY_TRY(read_raw(x, field.c_str()));
      if (x > 1) return fail(field + ": bool value " + std::to_string(x) + " is not 0 or 1", at);
      v.i = x;
      break;
    }
    case GgufType::kString: OSPREY_TRY(read_string(v.s, field)); break;
    case GgufType::kArray: OSPREY_TRY(read_array(v, field, depth + 1)); break;
  }
  return Status::Ok();
}

Status GgufParser::read_array(GgufValue& v, const std::string& field, int depth) {
  const size_t at = pos_;
  if (depth > kMaxArrayDepth) return fail(field + ": arrays nested too deeply", at);
  uint32_t raw_type = 0;
  uint64_t count = 0;
  OSPREY_TRY(read_raw(raw_type, field.c_str()));
  if (raw_type > static_cast<uint32_t>(GgufType::kF64))
    return fail(field + ": unknown array element type " + std::to_string(raw_type), at);
  const auto elem = static_cast<GgufType>(raw_type);
  OSPREY_TRY(read_raw(count, field.c_str()));
  // Each element takes at least min_encoded_size bytes, so a count the rest of
  // the file cannot hold is rejected before anything is allocated.
  if (count > remaining() / min_encoded_size(elem))
    return fail(field + ": array of " + std::to_string(count) + " " + gguf_type_name(elem) +
                    " elements cannot fit in the " + std::to_string(remaining()) + " bytes left",
                at);
  v.type = GgufType::kArray;
  v.elem_type = elem;
  GgufValue item;
  for (uint64_t k = 0; k < count; ++k) {
    if (elem == GgufType::kString) {
      std::string s;
      OSPREY_TRY(read_string(s, field));
      v.strings.push_back(std::move(s));
      continue;
    }
    OSPREY_TRY(read_value(elem, item, field, depth));
    if (elem == GgufType::kArray) v.nested.push_back(std::move(item)), item = GgufValue();
    else if (elem == GgufType::kF32 || elem == GgufType::kF64) v.floats.push_back(item.f);
    else v.ints.push_back(item.i);
  }
  return Status::Ok();
}

Status GgufParser::read_tensor_info(GgufTensorInfo& t, uint64_t index) {
  const std::string field = "tensor info #" + std::to_string(index);
  size_t at = pos_;
  OSPREY_TRY(read_string(t.name, field + " name", kMaxTensorNameBytes));
  if (t.name.empty()) return fail(field + ": empty tensor name", at);
  if (!utf8::is_valid(t.name)) return fail(field + ": tensor name is not valid UTF-8", at);
  const std::string tf = "tensor '" + t.name + "'";
  at = pos_;
  uint32_t n_dims = 0;
  OSPREY_TRY(read_raw(n_dims, (tf + " dimension count").c_str()));
  if (n_dims == 0 || n_dims > kMaxDims)
    return fail(tf + ": dimension count " + std::to_string(n_dims) + " is not between 1 and 4", at);
  t.dims.assign(n_dims, 0);
  uint64_t n_elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    at = pos_;
    uint64_t dim = 0;
    OSPREY_TRY(read_raw(dim, (tf + " dimensions").c_str()));
    if (dim == 0 || dim > (1ull << 40))
      return fail(tf + ": dimension " + std::to_string(d) + " = " + std::to_string(dim) + " is out of range", at);
    if (__builtin_mul_overflow(n_elements, dim, &n_elements) || n_elements > (1ull << 42))
      return fail(tf + ": element count overflows", at);
    t.dims[d] = static_cast<int64_t>(dim);
  }
  t.n_elements = static_cast<int64_t>(n_elements);
  at = pos_;
  uint32_t raw_type = 0;
  OSPREY_TRY(read_raw(raw_type, (tf + " type").c_str()));
  const DTypeLayout* layout = dtype_layout(raw_type);
  if (layout == nullptr) return fail(tf + ": unknown tensor type " + std::to_string(raw_type), at);
  t.type = layout->type;
  if (t.dims[0] % layout->block_len != 0)
    return fail(tf + ": row length " + std::to_string(t.dims[0]) + " is not a multiple of the " +
                    layout->name + " block length " + std::to_string(layout->block_len),
                at);
  t.n_bytes = n_elements / layout->block_len * layout->block_bytes;
  OSPREY_TRY(read_raw(t.offset, (tf + " offset").c_str()));
  return Status::Ok();
}

Status GgufParser::check_tensors(GgufFile& out) {
  const uint64_t data_size = size_ - std::min<uint64_t>(size_, out.data_offset_);
  for (auto& t : out.tensors_) {
    const std::string tf = "tensor '" + t.name + "'";
    if (t.offset % out.alignment_ != 0)
      return fail(tf + ": data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                      std::to_string(out.alignment_),
                  out.data_offset_);
    if (t.offset > data_size || t.n_bytes > data_size - t.offset)
      return fail(tf + ": data [" + std::to_string(t.offset) + ", " + std::to_string(t.offset + t.n_bytes) +
                      ") runs past the end of the data section (" + std::to_string(data_size) +
                      " bytes; truncated file?)",
                  out.data_offset_ + t.offset);
    t.data = data_ + out.data_offset_ + t.offset;
  }
  // Tensors may not share bytes: sort by offset and compare neighbours.
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& t : out.tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const auto* a = by_offset[k - 1];
    const auto* b = by_offset[k];
    if (a->offset + a->n_bytes > b->offset)
      return fail("tensors '" + a->name + "' and '" + b->name + "' overlap", out.data_offset_ + b->offset);
  }
  return Status::Ok();
}

Status GgufParser::parse(GgufFile& out) {
  out.file_size_ = size_;
  uint32_t magic = 0;
  OSPREY_TRY(read_raw(magic, "the magic number"));
  if (magic != kMagic) return fail("not a GGUF file (bad magic number)", 0);
  OSPREY_TRY(read_raw(out.version_, "the version"));
  if (out.version_ == 1) return Unsupported(name_ + ": GGUF version 1 is obsolete; convert the model again");
  if (out.version_ != 2 && out.version_ != 3)
    return fail("unsupported GGUF version " + std::to_string(out.version_), 4);
  uint64_t n_tensors = 0, n_kv = 0;
  OSPREY_TRY(read_raw(n_tensors, "the tensor count"));
  OSPREY_TRY(read_raw(n_kv, "the metadata count"));
  if (n_tensors > kMaxTensors || n_tensors > remaining() / 24)
    return fail("tensor count " + std::to_string(n_tensors) + " is implausible for a file of this size", 8);
  if (n_kv > kMaxKeys || n_kv > remaining() / 13)
    return fail("metadata count " + std::to_string(n_kv) + " is implausible for a file of this size", 16);

  // Hash sets keep the duplicate checks linear: a hostile file may hold a million names.
  std::unordered_set<std::string> seen_keys;
  for (uint64_t k = 0; k < n_kv; ++k) {
    const size_t at = pos_;
    std::string key;
    OSPREY_TRY(read_string(key, "metadata key #" + std::to_string(k), 65536));
    if (key.empty()) return fail("metadata key #" + std::to_string(k) + " is empty", at);
    if (!utf8::is_valid(key) || key.find('\0') != std::string::npos)
      return fail("metadata key #" + std::to_string(k) + " is not valid UTF-8", at);
    if (!seen_keys.insert(key).second) return fail("duplicate metadata key '" + key + "'", at);
    const size_t type_at = pos_;
    uint32_t raw_type = 0;
    OSPREY_TRY(read_raw(raw_type, ("type of '" + key + "'").c_str()));
    if (raw_type > static_cast<uint32_t>(GgufType::kF64))
      return fail("metadata '" + key + "' has unknown type " + std::to_string(raw_type), type_at);
    GgufValue value;
    OSPREY_TRY(read_value(static_cast<GgufType>(raw_type), value, "metadata '" + key + "'", 0));
    out.kv_.emplace_back(std::move(key), std::move(value));
  }

  if (const GgufValue* a = out.find("general.alignment")) {
    if (!gguf_type_is_integer(a->type) || a->type == GgufType::kBool || a->i <= 0 || a->i > (1 << 20) ||
        (a->i & (a->i - 1)) != 0)
      return fail("general.alignment must be a power of two, got " + a->to_display(), 0);
    out.alignment_ = static_cast<uint64_t>(a->i);
  }

  out.tensors_.resize(n_tensors);
  std::unordered_set<std::string> seen_tensors;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    const size_t at = pos_;
    OSPREY_TRY(read_tensor_info(out.tensors_[k], k));
    if (!seen_tensors.insert(out.tensors_[k].name).second)
      return fail("duplicate tensor name '" + out.tensors_[k].name + "'", at);
  }
  out.data_offset_ = (pos_ + out.alignment_ - 1) / out.alignment_ * out.alignment_;
  if (n_tensors > 0 && out.data_offset_ > size_)
    return fail("the data section starts past the end of the file (truncated file?)", pos_);
  return check_tensors(out);
}

Expected<GgufFile> GgufFile::parse(const uint8_t* data, size_t size, const std::string& name) {
  GgufFile file;
  file.path_ = name;
  GgufParser parser(data, size, name);
  OSPREY_TRY(parser.parse(file));
  return file;
}

Expected<GgufFile> GgufFile::open(const std::string& path) {
  OSPREY_ASSIGN_OR_RETURN(auto mapping, MappedFile::open(path));
  OSPREY_ASSIGN_OR_RETURN(GgufFile file, parse(mapping->data(), mapping->size(), path));
  file.mapping_ = std::move(mapping);
  return file;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& [k, v] : kv_)
    if (k == key) return &v;
  return nullptr;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

namespace {
Status wrong_type(const std::string& path, std::string_view key, const GgufValue& v, const char* want) {
  return CorruptFile(path + ": metadata '" + std::string(key) + "' has type " + gguf_type_name(v.type) +
                     ", expected " + want);
}
Status missing(const std::string& path, std::string_view key) {
  return CorruptFile(path + ": required metadata '" + std::string(key) + "' is missing");
}
}  // namespace

Expected<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(path_, key);
  if (!gguf_type_is_integer(v->type)) return wrong_type(path_, key, *v, "an integer");
  return v->i;
}

Expected<int64_t> GgufFile::get_int(std::string_view key, int64_t fallback) const {
  return find(key) ? get_int(key) : Expected<int64_t>(fallback);
}

Expected<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(path_, key);
  if (v->type == GgufType::kF32 || v->type == GgufType::kF64) return v->f;
  if (gguf_type_is_integer(v->type) && v->type != GgufType::kBool) return static_cast<double>(v->i);
  return wrong_type(path_, key, *v, "a number");
}

Expected<double> GgufFile::get_float(std::string_view key, double fallback) const {
  return find(key) ? get_float(key) : Expected<double>(fallback);
}

Expected<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(path_, key);
  if (v->type != GgufType::kString) return wrong_type(path_, key, *v, "a string");
  return v->s;
}

Expected<std::string> GgufFile::get_string(std::string_view key, std::string fallback) const {
  return find(key) ? get_string(key) : Expected<std::string>(std::move(fallback));
}

Expected<bool> GgufFile::get_bool(std::string_view key, bool fallback) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return fallback;
  if (!gguf_type_is_integer(v->type)) return wrong_type(path_, key, *v, "a bool");
  return v->i != 0;
}

Expected<const GgufValue*> GgufFile::get_array(std::string_view key, GgufType want) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(path_, key);
  const bool ok = v->type == GgufType::kArray &&
                  ((want == GgufType::kString && v->elem_type == GgufType::kString) ||
                   (want == GgufType::kF32 && (v->elem_type == GgufType::kF32 || v->elem_type == GgufType::kF64)) ||
                   (gguf_type_is_integer(want) && gguf_type_is_integer(v->elem_type)));
  if (!ok) {
    const std::string want_s = std::string("an array of ") + gguf_type_name(want);
    const std::string got = v->type == GgufType::kArray ? std::string("an array of ") + gguf_type_name(v->elem_type)
                                                        : gguf_type_name(v->type);
    return CorruptFile(path_ + ": metadata '" + std::string(key) + "' is " + got + ", expected " + want_s);
  }
  return v;
}

}  // namespace osprey
