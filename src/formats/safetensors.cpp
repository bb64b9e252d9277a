#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "formats/json_text.h"

namespace osprey {

namespace {

// Real headers are a few hundred kilobytes; the reference implementation
// refuses anything over 100 MB, and so does this one.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// The format needs three levels ({name: {shape: [...]}}); anything much
// deeper is hostile, and refusing it before parsing keeps a recursive
// parser's stack safe.
constexpr int kMaxDepth = 16;

using Json = nlohmann::json;

struct DtypeRow {
  const char* name;
  int size;
  std::optional<DType> type;
};
const DtypeRow kDtypes[] = {
    {"F64", 8, std::nullopt},      {"F32", 4, DType::kF32},        {"F16", 2, DType::kF16},
    {"BF16", 2, DType::kBF16},     {"I64", 8, std::nullopt},       {"I32", 4, std::nullopt},
    {"I16", 2, std::nullopt},      {"I8", 1, std::nullopt},        {"U8", 1, std::nullopt},
    {"U16", 2, std::nullopt},      {"U32", 4, std::nullopt},       {"U64", 8, std::nullopt},
    {"BOOL", 1, std::nullopt},     {"F8_E4M3", 1, std::nullopt},   {"F8_E5M2", 1, std::nullopt},
};

const DtypeRow* dtype_row(std::string_view name) {
  for (const DtypeRow& r : kDtypes)
    if (name == r.name) return &r;
  return nullptr;
}

Status tensor_error(const std::string& file, const std::string& tensor, const std::string& problem) {
  return CorruptFile(file + ": tensor '" + tensor + "': " + problem);
}

// One header entry, checked against the data section's size.
Expected<SafetensorsTensor> read_entry(const std::string& file, const std::string& name, const Json& v,
                                       const uint8_t* data, uint64_t data_size) {
  if (!v.is_object()) return tensor_error(file, name, "its entry is not an object");
  const auto dtype = v.find("dtype");
  const auto shape = v.find("shape");
  const auto offsets = v.find("data_offsets");
  if (dtype == v.end() || !dtype->is_string()) return tensor_error(file, name, "no \"dtype\" string");
  if (shape == v.end() || !shape->is_array()) return tensor_error(file, name, "no \"shape\" array");
  if (offsets == v.end() || !offsets->is_array() || offsets->size() != 2)
    return tensor_error(file, name, "\"data_offsets\" is not a pair [begin, end]");
  SafetensorsTensor t;
  t.name = name;
  t.file = file;
  t.dtype = dtype->get<std::string>();
  const DtypeRow* row = dtype_row(t.dtype);
  if (row == nullptr) return tensor_error(file, name, "unknown dtype '" + t.dtype + "'");
  t.type = row->type;
  if (shape->size() > 8) return tensor_error(file, name, "shape has " + std::to_string(shape->size()) + " dimensions");
  uint64_t elements = 1;
  for (const Json& d : *shape) {
    if (!d.is_number_unsigned()) return tensor_error(file, name, "shape entry " + d.dump() + " is not a size");
    const uint64_t n = d.get<uint64_t>();
    // Bound the product so that it, and it times 8 bytes, stay exact.
    if (n != 0 && elements > (uint64_t{1} << 56) / n) return tensor_error(file, name, "shape " + shape->dump() + " is absurdly large");
    elements *= n;
    t.shape.push_back(static_cast<int64_t>(n));
  }
  for (const Json& o : *offsets)
    if (!o.is_number_unsigned()) return tensor_error(file, name, "data offset " + o.dump() + " is not a byte position");
  const uint64_t begin = (*offsets)[0].get<uint64_t>(), end = (*offsets)[1].get<uint64_t>();
  if (begin > end) return tensor_error(file, name, "data offsets [" + std::to_string(begin) + ", " + std::to_string(end) + ") run backwards");
  if (end > data_size)
    return tensor_error(file, name, "data [" + std::to_string(begin) + ", " + std::to_string(end) +
                                        ") runs past the end of the data (" + std::to_string(data_size) + " bytes)");
  t.n_elements = static_cast<int64_t>(elements);
  t.n_bytes = end - begin;
  if (t.n_bytes != elements * static_cast<uint64_t>(row->size))
    return tensor_error(file, name, std::to_string(t.n_bytes) + " bytes of data, but shape " + shape->dump() + " of " +
                                        t.dtype + " needs " + std::to_string(elements * static_cast<uint64_t>(row->size)));
  t.data = data + begin;
  return t;
}

Expected<std::string> read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return IoError(path + ": cannot open");
  const auto size = static_cast<uint64_t>(in.tellg());
  if (size > kMaxHeaderBytes) return CorruptFile(path + ": " + std::to_string(size) + " bytes is too large for an index");
  std::string text(size, '\0');
  in.seekg(0);
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (!in) return IoError(path + ": read failed");
  return text;
}

}  // namespace

int safetensors_dtype_size(std::string_view dtype) {
  const DtypeRow* r = dtype_row(dtype);
  return r == nullptr ? 0 : r->size;
}

Expected<SafetensorsFile> SafetensorsFile::parse(const uint8_t* data, size_t size, const std::string& name) {
  if (size < 8) return CorruptFile(name + ": " + std::to_string(size) + " bytes, too short for a safetensors header");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  if (header_len > size - 8)
    return CorruptFile(name + ": header length " + std::to_string(header_len) + " runs past the end of the file (" +
                           std::to_string(size) + " bytes)");
  if (header_len > kMaxHeaderBytes)
    return CorruptFile(name + ": header length " + std::to_string(header_len) + " is over the 100 MB limit");
  const std::string_view header(reinterpret_cast<const char*>(data + 8), header_len);
  auto json = parse_json_text(header, name + ": header", kMaxDepth);
  if (!json.ok()) return json.status();
  if (!json->is_object()) return CorruptFile(name + ": header is not a JSON object");

  SafetensorsFile f;
  f.path_ = name;
  const uint8_t* body = data + 8 + header_len;
  const uint64_t body_size = size - 8 - header_len;
  for (const auto& [key, value] : json->items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) return CorruptFile(name + ": __metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) return CorruptFile(name + ": __metadata__ value for '" + mk + "' is not a string");
        f.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    auto t = read_entry(name, key, value, body, body_size);
    if (!t.ok()) return t.status();
    f.tensors_.push_back(std::move(*t));
  }
  // The data must be exactly the tensors, one after another: an overlap
  // means two tensors share bytes, a hole means the header and data disagree.
  std::sort(f.tensors_.begin(), f.tensors_.end(), [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
    return a.data != b.data ? a.data < b.data : a.n_bytes < b.n_bytes;
  });
  uint64_t at = 0;
  for (const SafetensorsTensor& t : f.tensors_) {
    const uint64_t begin = static_cast<uint64_t>(t.data - body);
    if (begin < at) return tensor_error(name, t.name, "its data overlaps the tensor before it");
    if (begin > at) return tensor_error(name, t.name, "leaves a hole of " + std::to_string(begin - at) + " bytes before its data");
    at = begin + t.n_bytes;
  }
  if (at != body_size)
    return CorruptFile(name + ": the tensors cover " + std::to_string(at) + " bytes of data but the file holds " +
                           std::to_string(body_size));
  return f;
}

Expected<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto mapping = MappedFile::open(path);
  if (!mapping.ok()) return mapping.status();
  auto f = parse((*mapping)->data(), (*mapping)->size(), path);
  if (!f.ok()) return f.status();
  f->mapping_ = std::move(*mapping);
  return f;
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  for (const SafetensorsTensor& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

Expected<SafetensorsModel> SafetensorsModel::open(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path root(dir);
  const fs::path index_path = root / "model.safetensors.index.json";
  const fs::path single = root / "model.safetensors";
  SafetensorsModel m;
  std::error_code ec;
  std::map<std::string, std::string> placed;  // tensor -> shard, from the index
  if (fs::exists(index_path, ec)) {
    auto text = read_small_file(index_path.string());
    if (!text.ok()) return text.status();
    auto json = parse_json_text(*text, index_path.string(), kMaxDepth);
    if (!json.ok()) return json.status();
    const auto map = json->is_object() ? json->find("weight_map") : json->end();
    if (!json->is_object() || map == json->end() || !map->is_object())
      return CorruptFile(index_path.string() + ": no \"weight_map\" object");
    std::set<std::string> shard_names;
    for (const auto& [tensor, shard] : map->items()) {
      if (!shard.is_string())
        return CorruptFile(index_path.string() + ": the shard of '" + tensor + "' is not a file name");
      const std::string s = shard.get<std::string>();
      // A shard is a file in this folder: a name that climbs out of it (or is a path at all) is refused.
      if (s.empty() || s == "." || s == ".." || s.find('/') != std::string::npos || s.find('\\') != std::string::npos)
        return CorruptFile(index_path.string() + ": shard name '" + s + "' (for '" + tensor + "') is not a file in the folder");
      placed[tensor] = s;
      shard_names.insert(s);
    }
    if (shard_names.empty()) return CorruptFile(index_path.string() + ": the weight map is empty");
    for (const std::string& s : shard_names) {
      const fs::path p = root / s;
      if (!fs::exists(p, ec))
        return IoError(index_path.string() + " names shard " + s + ", which is not in " + dir);
      auto f = SafetensorsFile::open(p.string());
      if (!f.ok()) return f.status();
      m.shards_.push_back(std::move(*f));
    }
  } else if (fs::exists(single, ec)) {
    auto f = SafetensorsFile::open(single.string());
    if (!f.ok()) return f.status();
    m.shards_.push_back(std::move(*f));
  } else {
    return IoError(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  for (const SafetensorsFile& f : m.shards_)
    for (const SafetensorsTensor& t : f.tensors()) {
      const auto [it, fresh] = m.by_name_.emplace(t.name, &t);
      if (!fresh) return CorruptFile(dir + ": tensor '" + t.name + "' is in both " + it->second->file + " and " + t.file);
    }
  for (const auto& [tensor, shard] : placed) {
    const auto it = m.by_name_.find(tensor);
    if (it == m.by_name_.end() || fs::path(it->second->file).filename() != shard)
      return IoError(dir + ": the index places tensor '" + tensor + "' in " + shard + ", which does not hold it");
  }
  return m;
}

const SafetensorsTensor* SafetensorsModel::find(std::string_view name) const {
  const auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : it->second;
}

uint64_t SafetensorsModel::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, t] : by_name_) n += t->n_bytes;
  return n;
}

}  // namespace osprey
