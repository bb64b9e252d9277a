#include "server/request_fields.h"

#include <cmath>
#include <vector>

namespace osprey::server {

void reject(const std::string& param, const std::string& message) {
  ApiError e;
  e.message = message;
  e.param = param;
  throw BadRequest(std::move(e));
}

namespace {

// Thrown from the parser's callback to stop it; turned into BadRequest.
struct LimitExceeded {
  std::string message;
};

std::string field_name(const std::string& path) { return "'" + path + "'"; }

}  // namespace

json parse_request_body(std::string_view text) {
  // One entry per open container: the keys seen so far of an object, or
  // SIZE_MAX for an array.
  std::vector<size_t> open;
  auto limits = [&open](int /*depth*/, json::parse_event_t event, json& /*parsed*/) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        open.push_back(event == json::parse_event_t::object_start ? 0 : SIZE_MAX);
        if (open.size() > static_cast<size_t>(kMaxJsonDepth))
          throw LimitExceeded{"the body nests arrays and objects more than " + std::to_string(kMaxJsonDepth) + " deep"};
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!open.empty()) open.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open.empty() && ++open.back() > kMaxObjectKeys)
          throw LimitExceeded{"an object in the body has more than " + std::to_string(kMaxObjectKeys) + " keys"};
        break;
      default: break;
    }
    return true;
  };
  json body;
  try {
    body = json::parse(text.begin(), text.end(), limits);
  } catch (const LimitExceeded& e) {
    reject("", e.message);
  } catch (const json::exception& e) {
    reject("", std::string("the body is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) reject("", "the body must be a JSON object, not " + json_type_name(body));
  return body;
}

std::string json_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "an unknown value";
  }
}

std::string element_path(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

std::vector<int32_t> token_ids(const json& array, const std::string& param, int64_t n_vocab) {
  std::vector<int32_t> ids;
  ids.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    const json& t = array[i];
    const bool integral = t.is_number_integer() || t.is_number_unsigned();
    if (!integral || (t.is_number_integer() && t.get<int64_t>() < 0) || t.get<uint64_t>() >= static_cast<uint64_t>(n_vocab))
      reject(element_path(param, i), "'" + element_path(param, i) + "' is " + t.dump().substr(0, 40) +
                                         ", not a token id (0.." + std::to_string(n_vocab - 1) + ")");
    ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return ids;
}

Fields::Fields(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

Fields Fields::of(const json& value, std::string path) {
  if (!value.is_object()) reject(path, field_name(path) + " must be an object, not " + json_type_name(value));
  return Fields(value, std::move(path));
}

std::string Fields::path(std::string_view name) const {
  return path_.empty() ? std::string(name) : path_ + "." + std::string(name);
}

void Fields::fail(std::string_view name, const std::string& message) const { reject(path(name), message); }

const json* Fields::get(std::string_view name) const {
  const auto it = object_.find(std::string(name));
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool Fields::has(std::string_view name) const { return get(name) != nullptr; }

bool Fields::boolean(std::string_view name, bool fallback) const {
  const json* v = get(name);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) fail(name, field_name(path(name)) + " must be true or false, not " + json_type_name(*v));
  return v->get<bool>();
}

double Fields::number(std::string_view name, double lo, double hi, double fallback) const {
  const json* v = get(name);
  if (v == nullptr) return fallback;
  if (!v->is_number()) fail(name, field_name(path(name)) + " must be a number, not " + json_type_name(*v));
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    fail(name, field_name(path(name)) + " must be between " + json(lo).dump() + " and " + json(hi).dump() + ", got " +
                   v->dump());
  return x;
}

std::optional<int64_t> Fields::optional_integer(std::string_view name, int64_t lo, int64_t hi) const {
  const json* v = get(name);
  if (v == nullptr) return std::nullopt;
  const std::string range = "between " + std::to_string(lo) + " and " + std::to_string(hi);
  // 3.0 is an integer to JSON Schema and to Python; accept it, but not 3.5.
  int64_t x = 0;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) fail(name, field_name(path(name)) + " must be " + range + ", got " + v->dump());
    x = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else if (v->is_number_float()) {
    const double d = v->get<double>();
    if (!std::isfinite(d) || d != std::floor(d))
      fail(name, field_name(path(name)) + " must be an integer, got " + v->dump());
    if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
      fail(name, field_name(path(name)) + " must be " + range + ", got " + v->dump());
    x = static_cast<int64_t>(d);
  } else {
    fail(name, field_name(path(name)) + " must be an integer, not " + json_type_name(*v));
  }
  if (x < lo || x > hi) fail(name, field_name(path(name)) + " must be " + range + ", got " + v->dump());
  return x;
}

int64_t Fields::integer(std::string_view name, int64_t lo, int64_t hi, int64_t fallback) const {
  return optional_integer(name, lo, hi).value_or(fallback);
}

std::optional<std::string> Fields::optional_string(std::string_view name) const {
  const json* v = get(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) fail(name, field_name(path(name)) + " must be a string, not " + json_type_name(*v));
  return v->get<std::string>();
}

std::string Fields::string(std::string_view name, const std::string& fallback) const {
  return optional_string(name).value_or(fallback);
}

std::string Fields::choice(std::string_view name, std::initializer_list<const char*> choices,
                           const std::string& fallback) const {
  const auto s = optional_string(name);
  if (!s) return fallback;
  std::string list;
  for (const char* c : choices) {
    if (*s == c) return *s;
    list += (list.empty() ? "'" : ", '") + std::string(c) + "'";
  }
  fail(name, field_name(path(name)) + " is '" + *s + "'; expected one of " + list);
}

std::string Fields::required_string(std::string_view name) const {
  if (!has(name)) fail(name, field_name(path(name)) + " is required");
  return *optional_string(name);
}

const json& Fields::required(std::string_view name) const {
  const json* v = get(name);
  if (v == nullptr) fail(name, field_name(path(name)) + " is required");
  return *v;
}

const json& Fields::required_array(std::string_view name) const {
  const json& v = required(name);
  if (!v.is_array()) fail(name, field_name(path(name)) + " must be an array, not " + json_type_name(v));
  return v;
}

std::optional<Fields> Fields::object(std::string_view name) const {
  const json* v = get(name);
  if (v == nullptr) return std::nullopt;
  return Fields::of(*v, path(name));
}

}  // namespace osprey::server
