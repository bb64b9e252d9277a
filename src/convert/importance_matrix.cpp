#include "convert/importance_matrix.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/atomic_file.h"
#include "core/mapped_file.h"
#include "formats/gguf.h"

namespace osprey {

namespace {

constexpr std::string_view kSumSuffix = ".in_sum2";
constexpr std::string_view kCountSuffix = ".counts";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::vector<float> floats_of(const GgufTensorInfo& t) {
  std::vector<float> v(static_cast<size_t>(t.n_elements));
  std::memcpy(v.data(), t.data, v.size() * sizeof(float));
  return v;
}

Status check_entry(const std::string& path, const std::string& name, const ImportanceMatrix::Entry& e) {
  for (float v : e.sum_sq)
    if (!std::isfinite(v) || v < 0)
      return CorruptFile(path + ": importance data of '" + name + "' holds a negative, NaN or infinite sum");
  for (float c : e.counts)
    if (!std::isfinite(c) || c < 0) return CorruptFile(path + ": token count of '" + name + "' is not a count");
  return Status::Ok();
}

Expected<ImportanceMatrix> load_gguf(const GgufFile& f) {
  ImportanceMatrix m;
  const std::string& path = f.path();
  if (auto a = f.get_array("imatrix.datasets", GgufType::kString); a.ok()) m.datasets = (*a)->strings;
  OSPREY_ASSIGN_OR_RETURN(m.chunk_count, f.get_int("imatrix.chunk_count", 0));
  OSPREY_ASSIGN_OR_RETURN(m.chunk_size, f.get_int("imatrix.chunk_size", 0));
  for (const GgufTensorInfo& t : f.tensors()) {
    if (ends_with(t.name, kCountSuffix)) {
      const std::string base = t.name.substr(0, t.name.size() - kCountSuffix.size());
      if (f.find_tensor(base + std::string(kSumSuffix)) == nullptr)
        return CorruptFile(path + ": '" + t.name + "' has no matching '" + base + std::string(kSumSuffix) + "'");
      continue;
    }
    if (!ends_with(t.name, kSumSuffix))
      return CorruptFile(path + ": tensor '" + t.name + "' is neither <name>.in_sum2 nor <name>.counts");
    const std::string base = t.name.substr(0, t.name.size() - kSumSuffix.size());
    const GgufTensorInfo* c = f.find_tensor(base + std::string(kCountSuffix));
    if (c == nullptr) return CorruptFile(path + ": '" + t.name + "' has no matching '" + base + ".counts'");
    if (t.type != DType::kF32 || c->type != DType::kF32)
      return CorruptFile(path + ": '" + base + "' is stored as " + dtype_name(t.type) + "/" + dtype_name(c->type) +
                         ", expected F32");
    ImportanceMatrix::Entry e;
    e.n_cols = t.dims[0];
    e.n_experts = t.rows();
    if (e.n_cols <= 0 || e.n_experts <= 0 || c->n_elements != e.n_experts)
      return CorruptFile(path + ": '" + base + "' has " + std::to_string(c->n_elements) + " counts for " +
                         std::to_string(e.n_experts) + " experts of " + std::to_string(e.n_cols) + " columns");
    e.sum_sq = floats_of(t);
    e.counts = floats_of(*c);
    OSPREY_TRY(check_entry(path, base, e));
    m.entries.emplace(base, std::move(e));
  }
  return m;
}

// llama.cpp's first layout: int32 entry count; per entry a length-prefixed
// name, int32 calls, int32 values and the values (already scaled to `calls`
// chunks' worth); then the chunk count and the dataset's name.
Expected<ImportanceMatrix> load_legacy(const std::string& path, const uint8_t* data, size_t size) {
  size_t at = 0;
  auto read_i32 = [&](const char* what) -> Expected<int32_t> {
    if (size - at < 4) return CorruptFile(path + ": ends inside " + what);
    int32_t v;
    std::memcpy(&v, data + at, 4);
    at += 4;
    return v;
  };
  auto read_str = [&](const char* what) -> Expected<std::string> {
    OSPREY_ASSIGN_OR_RETURN(const int32_t len, read_i32(what));
    if (len < 0 || static_cast<size_t>(len) > size - at)
      return CorruptFile(path + ": " + what + " length " + std::to_string(len) + " runs past the end of the file");
    std::string s(reinterpret_cast<const char*>(data + at), static_cast<size_t>(len));
    at += static_cast<size_t>(len);
    return s;
  };
  ImportanceMatrix m;
  OSPREY_ASSIGN_OR_RETURN(const int32_t n, read_i32("the entry count"));
  if (n <= 0 || static_cast<size_t>(n) > size / 12)
    return CorruptFile(path + ": is not an importance matrix (entry count " + std::to_string(n) + ")");
  for (int32_t i = 0; i < n; ++i) {
    OSPREY_ASSIGN_OR_RETURN(std::string name, read_str("a tensor name"));
    OSPREY_ASSIGN_OR_RETURN(const int32_t calls, read_i32("a call count"));
    OSPREY_ASSIGN_OR_RETURN(const int32_t n_val, read_i32("a value count"));
    if (n_val <= 0 || static_cast<size_t>(n_val) > (size - at) / 4)
      return CorruptFile(path + ": '" + name + "' claims " + std::to_string(n_val) + " values, past the end of the file");
    ImportanceMatrix::Entry e;
    e.n_cols = n_val;  // experts are not marked: column_weights splits by the row length
    e.sum_sq.resize(static_cast<size_t>(n_val));
    std::memcpy(e.sum_sq.data(), data + at, static_cast<size_t>(n_val) * 4);
    at += static_cast<size_t>(n_val) * 4;
    e.counts = {static_cast<float>(calls)};
    OSPREY_TRY(check_entry(path, name, e));
    if (!m.entries.emplace(name, std::move(e)).second) return CorruptFile(path + ": '" + name + "' appears twice");
  }
  if (size - at >= 4) {
    OSPREY_ASSIGN_OR_RETURN(const int32_t chunks, read_i32("the chunk count"));
    m.chunk_count = chunks;
    if (size - at >= 4) {
      OSPREY_ASSIGN_OR_RETURN(std::string dataset, read_str("the dataset name"));
      m.datasets.push_back(std::move(dataset));
    }
  }
  return m;
}

}  // namespace

Expected<ImportanceMatrix> ImportanceMatrix::load(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped.ok()) return mapped.status();
  const uint8_t* data = (*mapped)->data();
  const size_t size = (*mapped)->size();
  if (size >= 4 && std::memcmp(data, "GGUF", 4) == 0) {
    // Parsed from the mapping already open; the entries are copied out of it before it closes.
    OSPREY_ASSIGN_OR_RETURN(GgufFile f, GgufFile::parse(data, size, path));
    OSPREY_ASSIGN_OR_RETURN(const std::string type, f.get_string("general.type", ""));
    if (type != "imatrix")
      return InvalidArgument(path + ": is a GGUF file " +
                             (type.empty() ? std::string("without general.type \"imatrix\" (a model?)")
                                           : "of type '" + type + "'") +
                             ", not an importance matrix");
    return load_gguf(f);
  }
  return load_legacy(path, data, size);
}

namespace {

// The legacy layout, for tools that read only it (ik_llama.cpp and older
// llama.cpp). Each value is stored as a mean times the call count, which
// is how those readers expect to divide it back.
Status save_legacy(const ImportanceMatrix& m, const std::string& path) {
  std::vector<uint8_t> out;
  auto put = [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  };
  auto put_i32 = [&](int64_t v) {
    const int32_t x = static_cast<int32_t>(v);
    put(&x, 4);
  };
  const int64_t calls = std::max<int64_t>(1, m.chunk_count);
  put_i32(static_cast<int64_t>(m.entries.size()));
  for (const auto& [name, e] : m.entries) {
    put_i32(static_cast<int64_t>(name.size()));
    put(name.data(), name.size());
    put_i32(calls);
    put_i32(e.n_cols * e.n_experts);
    for (int64_t x = 0; x < e.n_experts; ++x) {
      const float count = e.counts[static_cast<size_t>(x)];
      for (int64_t j = 0; j < e.n_cols; ++j) {
        const float v = count > 0 ? e.sum_sq[static_cast<size_t>(x * e.n_cols + j)] / count * static_cast<float>(calls) : 0;
        put(&v, 4);
      }
    }
  }
  put_i32(m.chunk_count);
  const std::string dataset = m.datasets.empty() ? "" : m.datasets.front();
  put_i32(static_cast<int64_t>(dataset.size()));
  put(dataset.data(), dataset.size());
  return write_file_atomically(path, out);
}

}  // namespace

Status ImportanceMatrix::save(const std::string& path) const {
  if (ends_with(path, ".dat")) return save_legacy(*this, path);
  GgufWriter w;
  w.set("general.type", GgufValue::str("imatrix"));
  w.set("imatrix.datasets", GgufValue::string_array(datasets));
  w.set("imatrix.chunk_count", GgufValue::u32(static_cast<uint32_t>(chunk_count)));
  w.set("imatrix.chunk_size", GgufValue::u32(static_cast<uint32_t>(chunk_size)));
  auto bytes_of = [](const std::vector<float>& v) {
    std::vector<uint8_t> b(v.size() * sizeof(float));
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  for (const auto& [name, e] : entries) {
    OSPREY_TRY(w.add_tensor(name + std::string(kSumSuffix), DType::kF32, {e.n_cols, e.n_experts}, bytes_of(e.sum_sq)));
    OSPREY_TRY(w.add_tensor(name + std::string(kCountSuffix), DType::kF32, {1, e.n_experts}, bytes_of(e.counts)));
  }
  return w.write(path);
}

Status ImportanceMatrix::check_shape(const std::string& tensor, int64_t n_cols, int64_t n_experts) const {
  const auto it = entries.find(tensor);
  if (it == entries.end()) return Status::Ok();
  const Entry& e = it->second;
  if (e.n_cols == n_cols && e.n_experts == n_experts) return Status::Ok();
  if (e.n_experts == 1 && e.n_cols == n_cols * n_experts) return Status::Ok();  // the legacy layout's experts
  return InvalidArgument("the importance matrix has " + std::to_string(e.n_experts) + " x " + std::to_string(e.n_cols) +
                         " values for tensor '" + tensor + "', which has " + std::to_string(n_experts) + " x " +
                         std::to_string(n_cols) + " (was it made from another model?)");
}

std::vector<float> ImportanceMatrix::column_weights(const std::string& tensor, int64_t n_cols, int64_t expert) const {
  const auto it = entries.find(tensor);
  if (it == entries.end()) return {};
  const Entry& e = it->second;
  // The legacy layout stores a mixture's experts one after another in one
  // entry, each already a mean scaled by the shared call count.
  const bool flat = e.n_experts == 1 && e.n_cols != n_cols;
  if (flat ? (expert + 1) * n_cols > e.n_cols : (e.n_cols != n_cols || expert >= e.n_experts)) return {};
  const float count = e.counts[flat ? 0 : static_cast<size_t>(expert)];
  if (count <= 0) return {};
  const auto first = e.sum_sq.begin() + expert * n_cols;
  std::vector<float> w(first, first + n_cols);
  for (float& v : w) v /= count;
  return w;
}

}  // namespace osprey
