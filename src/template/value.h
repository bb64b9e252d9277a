// Values of the Jinja template language as chat templates use them.
//
// Arrays, objects and namespaces are shared by reference, as in Python:
// `{% set ns.x = 1 %}` must be seen through every name bound to `ns`, and
// `message == user_messages[-1]` compares identities, not contents.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace osprey::tmpl {

// Raised while rendering; carries the template line when known. The public
// API (chat_template.h) turns it into a Status.
class TemplateError : public std::runtime_error {
 public:
  explicit TemplateError(const std::string& message, int line = 0)
      : std::runtime_error(message), line_(line) {}
  int line() const { return line_; }

 private:
  int line_;
};

struct Value;
struct Object;
struct Callable;
using Array = std::vector<Value>;

struct Value {
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kArray, kObject, kCallable };

  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<Array> array;
  std::shared_ptr<Object> object;
  std::shared_ptr<Callable> callable;

  static Value none() { Value v; v.kind = Kind::kNone; return v; }
  static Value boolean(bool x) { Value v; v.kind = Kind::kBool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.kind = Kind::kInt; v.i = x; return v; }
  static Value number(double x) { Value v; v.kind = Kind::kFloat; v.f = x; return v; }
  static Value string(std::string x) { Value v; v.kind = Kind::kString; v.s = std::move(x); return v; }
  static Value list(Array items = {});
  static Value dict();
  static Value namespace_object();
  static Value function(std::string name, std::function<Value(struct CallArgs&)> fn);

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_none() const { return kind == Kind::kNone; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat; }
  bool is_array() const { return kind == Kind::kArray; }
  bool is_object() const { return kind == Kind::kObject; }
  double as_double() const { return kind == Kind::kInt ? static_cast<double>(i) : f; }

  bool truthy() const;
  // The text `{{ value }}` prints.
  std::string str() const;
  std::string type_name() const;
};

struct Object {
  std::vector<std::pair<std::string, Value>> entries;  // insertion order
  bool is_namespace = false;

  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  int line = 0;

  // Argument `index` by position or `name` by keyword, or undefined.
  Value get(size_t index, const char* name) const;
};

struct Callable {
  std::string name;
  std::function<Value(CallArgs&)> fn;
};

// Python-style equality: numbers by value, containers by identity.
bool equals(const Value& a, const Value& b);

// JSON conversion. from_json keeps key order; to_json follows the reference
// renderer's `tojson` (", " and ": " separators, or `indent` spaces).
Value from_json(const nlohmann::ordered_json& json);
std::string to_json(const Value& value, int indent = 0, int depth = 0);

}  // namespace osprey::tmpl
