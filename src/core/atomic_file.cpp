#include "core/atomic_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace osprey {

Status write_bytes(std::FILE* f, const std::string& path, const uint8_t* bytes, size_t n) {
  if (n > 0 && std::fwrite(bytes, 1, n, f) != n) return IoError(path + ": write failed (disk full?)");
  return Status::Ok();
}

Status write_file_atomically(const std::string& path, FunctionRef<Status(std::FILE*)> body) {
  const std::string tmp = path + ".partial";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return IoError(tmp + ": cannot create: " + std::strerror(errno));
  if (Status s = body(f); !s.ok()) {
    std::fclose(f);
    std::remove(tmp.c_str());
    return s;
  }
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    return IoError(path + ": write failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return IoError(path + ": cannot rename into place: " + ec.message());
  }
  return Status::Ok();
}

}  // namespace osprey
