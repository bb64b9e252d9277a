// Reading a request's JSON one field at a time, each through an accessor of
// the field's type. A value of the wrong type, shape or range throws
// BadRequest naming the field by its whole path ("messages[2].content[0].text"),
// which the API answers with 400 and that path as the error's `param`. No
// field of a request is read any other way, so no input reaches a JSON
// library call that could throw on a type it did not expect.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>
#include <initializer_list>

#include <nlohmann/json.hpp>

namespace osprey::server {

using json = nlohmann::ordered_json;

// An error as OpenAI's API reports it.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
};
json error_body(const ApiError& e);

// A request the API refuses; `error` is what the client is told.
class BadRequest : public std::runtime_error {
 public:
  explicit BadRequest(ApiError e) : std::runtime_error(e.message), error(std::move(e)) {}
  ApiError error;
};

[[noreturn]] void reject(const std::string& param, const std::string& message);

// The parser's limits, checked while parsing: deeper nesting would let
// recursive copies and renders run out of stack, and a wider object would
// make the insertion-ordered object (linear look-ups) quadratic.
inline constexpr int kMaxJsonDepth = 64;
inline constexpr size_t kMaxObjectKeys = 1024;

// Parses a request body. Throws BadRequest for text that is not JSON, not an
// object, or beyond the limits above.
json parse_request_body(std::string_view text);

// The fields of one JSON object of a request.
class Fields {
 public:
  // `path` is the object's own path ("" for the body, "messages[0]" ...).
  Fields(const json& object, std::string path);
  // Throws unless `value` is an object.
  static Fields of(const json& value, std::string path);

  // Present and not null.
  bool has(std::string_view name) const;
  // The value, or nullptr when absent or null.
  const json* get(std::string_view name) const;
  std::string path(std::string_view name) const;
  [[noreturn]] void fail(std::string_view name, const std::string& message) const;

  // Each accessor returns `fallback` when the field is absent or null.
  bool boolean(std::string_view name, bool fallback) const;
  double number(std::string_view name, double lo, double hi, double fallback) const;
  int64_t integer(std::string_view name, int64_t lo, int64_t hi, int64_t fallback) const;
  std::optional<int64_t> optional_integer(std::string_view name, int64_t lo, int64_t hi) const;
  std::string string(std::string_view name, const std::string& fallback) const;
  std::optional<std::string> optional_string(std::string_view name) const;
  // The value must be one of `choices` (listed in the error).
  std::string choice(std::string_view name, std::initializer_list<const char*> choices, const std::string& fallback) const;

  // Required fields: absent or null is an error too.
  std::string required_string(std::string_view name) const;
  const json& required_array(std::string_view name) const;
  const json& required(std::string_view name) const;

  // A nested object (absent or null: nullopt).
  std::optional<Fields> object(std::string_view name) const;

  const json& value() const { return object_; }
  const std::string& own_path() const { return path_; }

 private:
  const json& object_;
  std::string path_;
};

// "name" of a JSON value's type for messages: "a string", "an array" ...
std::string json_type_name(const json& v);

// The path of element `i` of the array at `path`.
std::string element_path(const std::string& path, size_t i);

// An array of token ids, each checked against the vocabulary (0..n_vocab-1);
// throws BadRequest naming the element ("prompt[3]") otherwise.
std::vector<int32_t> token_ids(const json& array, const std::string& param, int64_t n_vocab);

}  // namespace osprey::server
