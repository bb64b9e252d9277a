#include <fstream>
#include <sstream>

#include "cli/commands.h"

namespace osprey::cli {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Failure{"cannot open " + path};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::ordered_json read_json(const std::string& path) {
  try {
    return nlohmann::ordered_json::parse(read_text(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw Failure{path + ": invalid JSON: " + e.what()};
  }
}

}  // namespace osprey::cli
