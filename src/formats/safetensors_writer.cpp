#include "formats/safetensors_writer.h"

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "formats/safetensors.h"

namespace osprey {

Status SafetensorsWriter::declare(std::string name, std::string dtype, std::vector<int64_t> shape) {
  const int size = safetensors_dtype_size(dtype);
  if (size <= 0) return InvalidArgument("safetensors: unknown dtype '" + dtype + "' for '" + name + "'");
  uint64_t n = static_cast<uint64_t>(size);
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgument("safetensors: '" + name + "' has a negative dimension");
    n *= static_cast<uint64_t>(d);
  }
  tensors_.push_back({std::move(name), std::move(dtype), std::move(shape), data_bytes_, data_bytes_ + n});
  data_bytes_ += n;
  return Status::Ok();
}

Status SafetensorsWriter::write(const std::string& path, const Producer& produce) const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  for (const Tensor& t : tensors_)
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {t.begin, t.end}}};
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  return write_file_atomically(path, [&](std::FILE* f) -> Status {
    OSPREY_TRY(write_bytes(f, path, length, 8));
    OSPREY_TRY(write_bytes(f, path, reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    std::vector<uint8_t> bytes;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      bytes.clear();
      OSPREY_TRY(produce(i, bytes));
      if (bytes.size() != tensors_[i].end - tensors_[i].begin)
        return InvalidArgument("safetensors: '" + tensors_[i].name + "': " + std::to_string(bytes.size()) +
                               " bytes made, " + std::to_string(tensors_[i].end - tensors_[i].begin) + " declared");
      OSPREY_TRY(write_bytes(f, path, bytes.data(), bytes.size()));
    }
    return Status::Ok();
  });
}

}  // namespace osprey
