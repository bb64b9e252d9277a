#include "template/value.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>

#include <nlohmann/json.hpp>

namespace osprey::tmpl {

Value Value::list(Array items) {
  Value v;
  v.kind = Kind::kArray;
  v.array = std::make_shared<Array>(std::move(items));
  return v;
}

Value Value::dict() {
  Value v;
  v.kind = Kind::kObject;
  v.object = std::make_shared<Object>();
  return v;
}

Value Value::namespace_object() {
  Value v = dict();
  v.object->is_namespace = true;
  return v;
}

Value Value::function(std::string name, std::function<Value(CallArgs&)> fn) {
  Value v;
  v.kind = Kind::kCallable;
  v.callable = std::make_shared<Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return b;
    case Kind::kInt: return i != 0;
    case Kind::kFloat: return f != 0;
    case Kind::kString: return !s.empty();
    case Kind::kArray: return !array->empty();
    case Kind::kObject: return !object->entries.empty();
    case Kind::kCallable: return true;
  }
  return false;
}

namespace {

// The shortest text that reads back as the same (finite) double, fixed or
// scientific, whichever is shorter: std::to_chars's form. libc++ before 17
// (emscripten's) has no floating-point to_chars, so there the digits come
// from printf at rising precision.
std::string shortest_double(double x) {
#if defined(__cpp_lib_to_chars)
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, end);
#else
  char sci[64], fixed[400];
  int digits = 1;
  for (; digits < 17; ++digits) {
    std::snprintf(sci, sizeof sci, "%.*e", digits - 1, x);
    if (std::strtod(sci, nullptr) == x) break;
  }
  std::snprintf(sci, sizeof sci, "%.*e", digits - 1, x);
  const int exponent = std::atoi(std::strchr(sci, 'e') + 1);
  std::snprintf(fixed, sizeof fixed, "%.*f", std::max(0, digits - 1 - exponent), x);
  return std::strlen(fixed) <= std::strlen(sci) ? std::string(fixed) : std::string(sci);
#endif
}

// Shortest text that reads back as the same double, with ".0" on integral
// values the way Python prints floats.
std::string format_float(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  std::string text = shortest_double(x);
  if (text.find_first_of(".en") == std::string::npos) text += ".0";
  return text;
}

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

}  // namespace

std::string Value::str() const {
  switch (kind) {
    case Kind::kUndefined:
    case Kind::kNone: return "";
    case Kind::kBool: return b ? "true" : "false";
    case Kind::kInt: return std::to_string(i);
    case Kind::kFloat: return format_float(f);
    case Kind::kString: return s;
    case Kind::kArray:
    case Kind::kObject: return to_json(*this);
    case Kind::kCallable: return "<function " + callable->name + ">";
  }
  return "";
}

std::string Value::type_name() const {
  switch (kind) {
    case Kind::kUndefined: return "undefined";
    case Kind::kNone: return "none";
    case Kind::kBool: return "boolean";
    case Kind::kInt: return "integer";
    case Kind::kFloat: return "float";
    case Kind::kString: return "string";
    case Kind::kArray: return "list";
    case Kind::kObject: return object->is_namespace ? "namespace" : "mapping";
    case Kind::kCallable: return "function";
  }
  return "?";
}

const Value* Object::find(const std::string& key) const {
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

void Object::set(const std::string& key, Value value) {
  for (auto& [k, v] : entries) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(key, std::move(value));
}

Value CallArgs::get(size_t index, const char* name) const {
  if (index < positional.size()) return positional[index];
  if (name != nullptr)
    for (const auto& [k, v] : keyword)
      if (k == name) return v;
  return Value();
}

bool equals(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) return a.as_double() == b.as_double();
  if (a.kind == K::kBool && b.kind == K::kBool) return a.b == b.b;
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case K::kUndefined:
    case K::kNone: return true;
    case K::kString: return a.s == b.s;
    case K::kArray: return a.array == b.array;
    case K::kObject: return a.object == b.object;
    case K::kCallable: return a.callable == b.callable;
    default: return false;
  }
}

Value from_json(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::integer(json.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value::integer(static_cast<int64_t>(json.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: return Value::number(json.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::string(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      Array items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(from_json(item));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value v = Value::dict();
      for (auto it = json.begin(); it != json.end(); ++it) v.object->set(it.key(), from_json(it.value()));
      return v;
    }
    default: return Value();
  }
}

std::string to_json(const Value& value, int indent, int depth) {
  using K = Value::Kind;
  switch (value.kind) {
    case K::kUndefined:
    case K::kNone: return "null";
    case K::kBool: return value.b ? "true" : "false";
    case K::kInt: return std::to_string(value.i);
    case K::kFloat: {
      // JSON numbers print integral floats without ".0", as JSON.stringify does.
      if (!std::isfinite(value.f)) return "null";
      return shortest_double(value.f);
    }
    case K::kString: {
      std::string out;
      append_json_string(out, value.s);
      return out;
    }
    case K::kArray:
    case K::kObject: {
      const bool is_array = value.kind == K::kArray;
      const size_t count = is_array ? value.array->size() : value.object->entries.size();
      const char open = is_array ? '[' : '{';
      const char close = is_array ? ']' : '}';
      if (count == 0) return std::string{open, close};
      auto newline_pad = [&](int levels) {
        std::string pad;
        if (indent > 0) {
          pad.push_back('\n');
          pad.append(static_cast<size_t>(indent * levels), ' ');
        }
        return pad;
      };
      const std::string child_pad = newline_pad(depth + 1);
      const std::string base_pad = newline_pad(depth);
      const std::string separator = indent > 0 ? "," : ", ";
      std::string out(1, open);
      for (size_t k = 0; k < count; ++k) {
        if (k > 0) out += separator;
        out += child_pad;
        if (is_array) {
          out += to_json((*value.array)[k], indent, depth + 1);
        } else {
          const auto& [key, item] = value.object->entries[k];
          append_json_string(out, key);
          out += ": ";
          out += to_json(item, indent, depth + 1);
        }
      }
      out += base_pad;
      out += close;
      return out;
    }
    case K::kCallable: throw TemplateError("cannot convert a function to JSON");
  }
  return "null";
}

}  // namespace osprey::tmpl
