#include "server/prefix_key.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace osprey::server {

std::string prefix_key(std::span<const int32_t> prompt, int64_t block_size, int64_t blocks) {
  const int64_t len = static_cast<int64_t>(prompt.size());
  // Whole blocks only, so that the key stays the same as a conversation grows.
  const int64_t n = len < block_size ? len : std::min(len / block_size, blocks) * block_size;
  // FNV-1a over the ids' bytes, then a final mix so that nearby prompts spread.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t t = static_cast<uint32_t>(prompt[static_cast<size_t>(i)]);
    for (int b = 0; b < 4; ++b) {
      h ^= (t >> (8 * b)) & 0xffu;
      h *= 0x100000001b3ULL;
    }
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  char buf[24];
  std::snprintf(buf, sizeof buf, "p%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::optional<std::string> client_prefix_key(const std::string* header) {
  if (header == nullptr || header->empty() || header->size() > 128) return std::nullopt;
  for (char c : *header)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' && c != ':') return std::nullopt;
  return *header;
}

}  // namespace osprey::server
