// JSON text from files that come from outside (a model folder's config.json
// and tokenizer files, safetensors headers): nesting is bounded before the
// recursive parser sees it, so a hostile file cannot exhaust the stack, and
// every failure is an error that names the file.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "osprey/status.h"

namespace osprey {

// Deeper than any model folder's JSON files go.
constexpr int kMaxJsonFileDepth = 64;

// The deepest nesting of objects and arrays in `text`, counting brackets
// outside strings; counting stops once it passes `limit`.
int json_nesting_depth(std::string_view text, int limit);

// `text` parsed, after refusing nesting deeper than max_depth; errors name `what`.
Expected<nlohmann::json> parse_json_text(std::string_view text, const std::string& what, int max_depth);

// A file's whole text.
Expected<std::string> read_text_file(const std::string& path);
// A file's JSON, as parse_json_text reads it.
Expected<nlohmann::json> read_json_file(const std::string& path, int max_depth = kMaxJsonFileDepth);

}  // namespace osprey
