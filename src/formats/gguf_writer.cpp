#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/atomic_file.h"
#include "formats/gguf.h"

namespace osprey {

namespace {

class ByteSink {
 public:
  std::vector<uint8_t> bytes;
  template <typename T>
  void put(T v) {
    append(&v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    append(s.data(), s.size());
  }
  void append(const void* p, size_t n) {
    const size_t at = bytes.size();
    bytes.resize(at + n);
    if (n > 0) std::memcpy(bytes.data() + at, p, n);
  }
  void pad_to(uint64_t alignment) {
    while (bytes.size() % alignment) bytes.push_back(0);
  }
};

void put_scalar(ByteSink& out, GgufType t, int64_t i, double f) {
  switch (t) {
    case GgufType::kU8: out.put<uint8_t>(static_cast<uint8_t>(i)); break;
    case GgufType::kI8: out.put<int8_t>(static_cast<int8_t>(i)); break;
    case GgufType::kBool: out.put<uint8_t>(i ? 1 : 0); break;
    case GgufType::kU16: out.put<uint16_t>(static_cast<uint16_t>(i)); break;
    case GgufType::kI16: out.put<int16_t>(static_cast<int16_t>(i)); break;
    case GgufType::kU32: out.put<uint32_t>(static_cast<uint32_t>(i)); break;
    case GgufType::kI32: out.put<int32_t>(static_cast<int32_t>(i)); break;
    case GgufType::kU64: out.put<uint64_t>(static_cast<uint64_t>(i)); break;
    case GgufType::kI64: out.put<int64_t>(i); break;
    case GgufType::kF32: out.put<float>(static_cast<float>(f)); break;
    case GgufType::kF64: out.put<double>(f); break;
    default: break;
  }
}

void put_value(ByteSink& out, const GgufValue& v) {
  if (v.type == GgufType::kString) {
    out.put_string(v.s);
  } else if (v.type == GgufType::kArray) {
    out.put<uint32_t>(static_cast<uint32_t>(v.elem_type));
    out.put<uint64_t>(v.array_size());
    if (v.elem_type == GgufType::kString) {
      for (const auto& s : v.strings) out.put_string(s);
    } else if (v.elem_type == GgufType::kArray) {
      for (const auto& n : v.nested) put_value(out, n);
    } else if (v.elem_type == GgufType::kF32 || v.elem_type == GgufType::kF64) {
      for (double f : v.floats) put_scalar(out, v.elem_type, 0, f);
    } else {
      for (int64_t i : v.ints) put_scalar(out, v.elem_type, i, 0);
    }
  } else {
    put_scalar(out, v.type, v.i, v.f);
  }
}

}  // namespace

void GgufWriter::set(std::string key, GgufValue value) {
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::remove(std::string_view key) {
  std::erase_if(kv_, [&](const auto& kv) { return kv.first == key; });
}

void GgufWriter::set_alignment(uint32_t alignment) {
  alignment_ = alignment;
  set("general.alignment", GgufValue::u32(alignment));
}

Expected<uint64_t> GgufWriter::checked_bytes(const std::string& name, DType type, const std::vector<int64_t>& dims) const {
  uint64_t n = 1;
  for (int64_t d : dims) n *= static_cast<uint64_t>(d);
  const auto row = dtype_row_bytes(type, static_cast<uint64_t>(dims.empty() ? 0 : dims[0]));
  if (dims.empty() || dims.size() > 4 || !row)
    return InvalidArgument("tensor '" + name + "': bad shape for type " + dtype_name(type));
  return *row * (n / static_cast<uint64_t>(dims[0]));
}

Status GgufWriter::add_tensor(std::string name, DType type, std::vector<int64_t> dims, std::vector<uint8_t> bytes) {
  const auto expect = checked_bytes(name, type, dims);
  if (!expect) return expect.status();
  if (bytes.size() != *expect)
    return InvalidArgument("tensor '" + name + "': " + std::to_string(bytes.size()) + " bytes given, " +
                           std::to_string(*expect) + " expected");
  tensors_.push_back({std::move(name), type, std::move(dims), *expect, false, std::move(bytes)});
  return Status::Ok();
}

Status GgufWriter::declare_tensor(std::string name, DType type, std::vector<int64_t> dims) {
  const auto expect = checked_bytes(name, type, dims);
  if (!expect) return expect.status();
  tensors_.push_back({std::move(name), type, std::move(dims), *expect, true, {}});
  return Status::Ok();
}

// Everything before the tensor data: header, metadata, tensor infos, padding.
std::vector<uint8_t> GgufWriter::header_bytes() const {
  ByteSink out;
  out.put<uint32_t>(0x46554747);
  out.put<uint32_t>(3);
  out.put<uint64_t>(tensors_.size());
  out.put<uint64_t>(kv_.size());
  for (const auto& [k, v] : kv_) {
    out.put_string(k);
    out.put<uint32_t>(static_cast<uint32_t>(v.type));
    put_value(out, v);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    out.put_string(t.name);
    out.put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) out.put<uint64_t>(static_cast<uint64_t>(d));
    out.put<uint32_t>(static_cast<uint32_t>(t.type));
    out.put<uint64_t>(offset);
    offset += (t.n_bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  out.pad_to(alignment_);
  return std::move(out.bytes);
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<uint8_t> out = header_bytes();
  for (const auto& t : tensors_) {
    out.insert(out.end(), t.bytes.begin(), t.bytes.end());
    out.resize((out.size() + alignment_ - 1) / alignment_ * alignment_, 0);
  }
  return out;
}

Status GgufWriter::write(const std::string& path) const {
  return write(path, [](size_t, std::vector<uint8_t>&) {
    return InvalidArgument("a declared tensor needs the streamed write(path, producer)");
  });
}

Status GgufWriter::write(const std::string& path, const Producer& produce) const {
  // Streamed tensor by tensor so that a multi-gigabyte model is not copied once more in memory.
  return write_file_atomically(path, [&](std::FILE* f) -> Status {
    const std::vector<uint8_t> header = header_bytes();
    OSPREY_TRY(write_bytes(f, path, header.data(), header.size()));
    std::vector<uint8_t> made;
    size_t declared = 0;
    for (const auto& t : tensors_) {
      const std::vector<uint8_t>* bytes = &t.bytes;
      if (t.declared) {
        made.clear();
        OSPREY_TRY(produce(declared++, made));
        if (made.size() != t.n_bytes)
          return InvalidArgument("tensor '" + t.name + "': " + std::to_string(made.size()) + " bytes made, " +
                                 std::to_string(t.n_bytes) + " declared");
        bytes = &made;
      }
      const std::vector<uint8_t> pad((alignment_ - bytes->size() % alignment_) % alignment_, 0);
      OSPREY_TRY(write_bytes(f, path, bytes->data(), bytes->size()));
      OSPREY_TRY(write_bytes(f, path, pad.data(), pad.size()));
    }
    return Status::Ok();
  });
}

}  // namespace osprey
