// Writing a file so that it exists under its name whole or not at all: the
// bytes go to `path.partial`, which is renamed over `path` only once every
// byte is written and the file is closed. An interrupted or failed write
// (disk full, a producer's error) removes the partial file and leaves any
// earlier file under `path` as it was.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/function_ref.h"
#include "osprey/status.h"

namespace osprey {

// Writes `bytes` to the FILE, or fails naming `path`.
Status write_bytes(std::FILE* f, const std::string& path, const uint8_t* bytes, size_t n);

// Calls body(f) with the partial file open for writing, then moves it into place.
Status write_file_atomically(const std::string& path, FunctionRef<Status(std::FILE*)> body);

inline Status write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  return write_file_atomically(path, [&](std::FILE* f) { return write_bytes(f, path, bytes.data(), bytes.size()); });
}

}  // namespace osprey
