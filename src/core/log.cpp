#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace osprey::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
std::mutex g_mutex;
}  // namespace

void set_level(Level level) { g_level = level; }
Level level() { return g_level; }

void write(Level lvl, const std::string& message) {
  if (lvl < g_level.load()) return;
  static const char* const kPrefix[] = {"debug: ", "", "warning: ", "error: "};
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s%s\n", kPrefix[static_cast<int>(lvl)], message.c_str());
}

}  // namespace osprey::log
