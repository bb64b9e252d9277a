// The chat page served at / (src/server/web), compiled into the executable
// by cmake/embed_web_assets.cmake.
#pragma once

#include <span>
#include <string_view>

namespace osprey::server {

struct WebAsset {
  std::string_view path;          // "/" or "/web/NAME"
  std::string_view content_type;
  std::string_view body;
};

std::span<const WebAsset> web_assets();

// The asset served at `path`, or nullptr.
inline const WebAsset* find_web_asset(std::string_view path) {
  for (const WebAsset& a : web_assets())
    if (a.path == path) return &a;
  return nullptr;
}

}  // namespace osprey::server
