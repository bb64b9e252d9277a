#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "formats/json_text.h"

namespace osprey::cli {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Failure{"cannot open " + path};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::ordered_json read_json(const std::string& path) {
  const std::string text = read_text(path);
  // Bounded before the recursive parser sees it, as for every JSON file osprey reads.
  if (json_nesting_depth(text, kMaxJsonFileDepth) > kMaxJsonFileDepth)
    throw Failure{path + ": JSON nested more than " + std::to_string(kMaxJsonFileDepth) + " levels deep"};
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Failure{path + ": invalid JSON: " + e.what()};
  }
}

}  // namespace osprey::cli
