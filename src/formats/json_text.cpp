#include "formats/json_text.h"

#include <fstream>
#include <sstream>

namespace osprey {

int json_nesting_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

Expected<nlohmann::json> parse_json_text(std::string_view text, const std::string& what, int max_depth) {
  if (json_nesting_depth(text, max_depth) > max_depth)
    return CorruptFile(what + ": JSON nested more than " + std::to_string(max_depth) + " levels deep");
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) return j;
  // Parse again for where it went wrong.
  try {
    const nlohmann::json again = nlohmann::json::parse(text.begin(), text.end());
    static_cast<void>(again);
  } catch (const nlohmann::json::exception& e) {  // a syntax error, or a number too large (out_of_range)
    return CorruptFile(what + ": not valid JSON (" + e.what() + ")");
  }
  return CorruptFile(what + ": not valid JSON");
}

Expected<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(path + ": cannot open");
  std::stringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return IoError(path + ": read failed");
  return buf.str();
}

Expected<nlohmann::json> read_json_file(const std::string& path, int max_depth) {
  OSPREY_ASSIGN_OR_RETURN(const std::string text, read_text_file(path));
  return parse_json_text(text, path, max_depth);
}

}  // namespace osprey
