#include "template/builtins.h"

#include <algorithm>
#include <cmath>
#include <clocale>
#include <cstdio>
#include <cwctype>
#include <locale.h>
#include <ctime>
#include <string_view>
#include <unordered_map>

#include "core/utf8.h"

namespace osprey::tmpl {
namespace {

[[noreturn]] void fail(const std::string& message, int line = 0) { throw TemplateError(message, line); }

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string strip(const std::string& s, bool left, bool right, const Value& chars = Value()) {
  auto strip_char = [&](char c) { return chars.is_string() ? chars.s.find(c) != std::string::npos : is_ws(c); };
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && strip_char(s[b])) ++b;
  if (right)
    while (e > b && strip_char(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// Case mapping by code point through the C library's UTF-8 tables, so
// "é" becomes "É" as it does in Python and JavaScript.
uint32_t map_case(uint32_t cp, bool upper) {
  static const locale_t utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  if (cp < 0x80) {
    if (upper && cp >= 'a' && cp <= 'z') return cp - 32;
    if (!upper && cp >= 'A' && cp <= 'Z') return cp + 32;
    return cp;
  }
  if (utf8_locale == static_cast<locale_t>(nullptr)) return cp;
  return static_cast<uint32_t>(upper ? towupper_l(static_cast<wint_t>(cp), utf8_locale)
                                     : towlower_l(static_cast<wint_t>(cp), utf8_locale));
}

std::string map_case(const std::string& s, bool upper) {
  std::string out;
  out.reserve(s.size());
  for (size_t p = 0; p < s.size();) {
    uint32_t cp = 0;
    size_t used = 0;
    if (!utf8::decode(s, p, cp, used)) {
      out += s[p++];  // invalid bytes pass through unchanged
      continue;
    }
    utf8::append(out, map_case(cp, upper));
    p += used;
  }
  return out;
}

std::string to_lower(const std::string& s) { return map_case(s, false); }
std::string to_upper(const std::string& s) { return map_case(s, true); }

// First character upper-cased, the rest left as they are (the reference
// renderer's capitalize).
std::string capitalize(const std::string& s) {
  if (s.empty()) return s;
  const size_t first = std::max<size_t>(1, static_cast<size_t>(utf8::sequence_length(static_cast<uint8_t>(s[0]))));
  return to_upper(s.substr(0, first)) + s.substr(std::min(first, s.size()));
}

std::string title_case(const std::string& s) {
  std::string out;
  bool start = true;
  for (size_t p = 0; p < s.size();) {
    size_t n = std::max<size_t>(1, static_cast<size_t>(utf8::sequence_length(static_cast<uint8_t>(s[p]))));
    std::string ch = s.substr(p, n);
    p += n;
    const bool word_char = std::isalnum(static_cast<unsigned char>(ch[0])) || static_cast<unsigned char>(ch[0]) >= 0x80;
    out += word_char ? (start ? to_upper(ch) : to_lower(ch)) : ch;
    start = !word_char;
  }
  return out;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  if (count == 0) return s;
  std::string out;
  int64_t done = 0;
  if (from.empty()) {
    // Python inserts `to` between characters (and at both ends).
    auto chars = utf8::split_chars(s);
    for (const auto& ch : chars) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      out += ch;
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  size_t pos = 0;
  for (;;) {
    size_t hit = s.find(from, pos);
    if (hit == std::string::npos || (count >= 0 && done >= count)) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
    ++done;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

Array split(const std::string& s, const Value& sep, int64_t max_split) {
  Array parts;
  if (!sep.is_string()) {
    size_t p = 0;
    while (p < s.size()) {
      while (p < s.size() && is_ws(s[p])) ++p;
      if (p >= s.size()) break;
      if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
        parts.push_back(Value::string(strip(s.substr(p), false, true)));
        return parts;
      }
      size_t e = p;
      while (e < s.size() && !is_ws(s[e])) ++e;
      parts.push_back(Value::string(s.substr(p, e - p)));
      p = e;
    }
    return parts;
  }
  if (sep.s.empty()) fail("split: empty separator");
  size_t p = 0;
  for (;;) {
    size_t hit = s.find(sep.s, p);
    if (hit == std::string::npos || (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split)) break;
    parts.push_back(Value::string(s.substr(p, hit - p)));
    p = hit + sep.s.size();
  }
  parts.push_back(Value::string(s.substr(p)));
  return parts;
}

int64_t to_int(const Value& v, int64_t fallback) {
  switch (v.kind) {
    case Value::Kind::kInt: return v.i;
    case Value::Kind::kFloat: return std::isfinite(v.f) ? static_cast<int64_t>(v.f) : fallback;
    case Value::Kind::kBool: return v.b;
    case Value::Kind::kString: {
      char* end = nullptr;
      long long x = std::strtoll(v.s.c_str(), &end, 10);
      return end != v.s.c_str() && *end == '\0' ? x : fallback;
    }
    default: return fallback;
  }
}

size_t length(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kString: return utf8::split_chars(v.s).size();
    case Value::Kind::kArray: return v.array->size();
    case Value::Kind::kObject: return v.object->entries.size();
    case Value::Kind::kUndefined: return 0;
    default: fail("object of type " + v.type_name() + " has no length");
  }
}

// Python-style ordering for sort/min/max.
bool less_than(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.as_double() < b.as_double();
  if (a.is_string() && b.is_string()) return a.s < b.s;
  if (a.kind == Value::Kind::kBool && b.kind == Value::Kind::kBool) return a.b < b.b;
  fail("cannot compare " + a.type_name() + " with " + b.type_name());
}

Value attribute_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t p = 0;
  while (p <= path.size()) {
    size_t dot = path.find('.', p);
    std::string part = path.substr(p, dot == std::string::npos ? std::string::npos : dot - p);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = numeric ? get_item(cur, Value::integer(std::stoll(part))) : get_item(cur, Value::string(part));
    if (dot == std::string::npos) break;
    p = dot + 1;
  }
  return cur;
}

Array as_list(const Value& v) { return iterate(v, 0); }

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// printf-style `"%s and %d" | format(a, b)`.
std::string percent_format(const std::string& fmt, const std::vector<Value>& args) {
  std::string out;
  size_t next = 0;
  for (size_t k = 0; k < fmt.size(); ++k) {
    if (fmt[k] != '%' || k + 1 >= fmt.size()) {
      out += fmt[k];
      continue;
    }
    char spec = fmt[++k];
    if (spec == '%') {
      out += '%';
      continue;
    }
    if (next >= args.size()) fail("format: not enough arguments for the format string");
    const Value& a = args[next++];
    if (spec == 'd' || spec == 'i') {
      out += std::to_string(to_int(a, 0));
    } else if (spec == 'f') {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%f", a.as_double());
      out += buf;
    } else {
      out += a.str();
    }
  }
  return out;
}

Value make_method(const Value& self, const std::string& name) {
  return Value::function(name, [self, name](CallArgs& args) -> Value {
    const Value a0 = args.get(0, nullptr);
    if (self.is_string()) {
      const std::string& s = self.s;
      if (name == "upper") return Value::string(to_upper(s));
      if (name == "lower") return Value::string(to_lower(s));
      if (name == "strip") return Value::string(strip(s, true, true, a0));
      if (name == "lstrip") return Value::string(strip(s, true, false, a0));
      if (name == "rstrip") return Value::string(strip(s, false, true, a0));
      if (name == "title") return Value::string(title_case(s));
      if (name == "capitalize") return Value::string(capitalize(s));
      if (name == "split") return Value::list(split(s, args.get(0, "sep"), to_int(args.get(1, "maxsplit"), -1)));
      if (name == "startswith" || name == "endswith") {
        auto match = [&](const std::string& fix) {
          if (fix.size() > s.size()) return false;
          return name == "startswith" ? s.compare(0, fix.size(), fix) == 0
                                      : s.compare(s.size() - fix.size(), fix.size(), fix) == 0;
        };
        if (a0.is_array()) {
          for (const auto& item : *a0.array)
            if (item.is_string() && match(item.s)) return Value::boolean(true);
          return Value::boolean(false);
        }
        if (!a0.is_string()) fail(name + "() expects a string");
        return Value::boolean(match(a0.s));
      }
      if (name == "replace") {
        Value to = args.get(1, nullptr);
        if (!a0.is_string() || !to.is_string()) fail("replace() expects two strings");
        return Value::string(replace_all(s, a0.s, to.s, to_int(args.get(2, "count"), -1)));
      }
      if (name == "find") return Value::integer(a0.is_string() && s.find(a0.s) != std::string::npos
                                                    ? static_cast<int64_t>(s.find(a0.s))
                                                    : -1);
      if (name == "count") {
        if (!a0.is_string() || a0.s.empty()) fail("count() expects a non-empty string");
        int64_t n = 0;
        for (size_t p = s.find(a0.s); p != std::string::npos; p = s.find(a0.s, p + a0.s.size())) ++n;
        return Value::integer(n);
      }
      if (name == "join") {
        std::string out;
        Array items = as_list(a0);
        for (size_t k = 0; k < items.size(); ++k) out += (k ? s : "") + items[k].str();
        return Value::string(out);
      }
      if (name == "format") return Value::string(percent_format(s, args.positional));
    } else if (self.is_array()) {
      Array& items = *self.array;
      if (name == "append") {
        items.push_back(a0);
        return Value::none();
      }
      if (name == "extend") {
        for (auto& v : as_list(a0)) items.push_back(v);
        return Value::none();
      }
      if (name == "pop") {
        if (items.empty()) fail("pop from an empty list");
        int64_t idx = to_int(args.get(0, nullptr), -1);
        if (idx < 0) idx += static_cast<int64_t>(items.size());
        if (idx < 0 || idx >= static_cast<int64_t>(items.size())) fail("pop index out of range");
        Value v = items[static_cast<size_t>(idx)];
        items.erase(items.begin() + idx);
        return v;
      }
      if (name == "index") {
        for (size_t k = 0; k < items.size(); ++k)
          if (equals(items[k], a0)) return Value::integer(static_cast<int64_t>(k));
        fail("value is not in the list");
      }
      if (name == "count") {
        int64_t n = 0;
        for (const auto& v : items) n += equals(v, a0);
        return Value::integer(n);
      }
    } else if (self.is_object()) {
      const Object& obj = *self.object;
      if (name == "items") {
        Array out;
        for (const auto& [k, v] : obj.entries) out.push_back(Value::list({Value::string(k), v}));
        return Value::list(std::move(out));
      }
      if (name == "keys") {
        Array out;
        for (const auto& [k, v] : obj.entries) out.push_back(Value::string(k));
        return Value::list(std::move(out));
      }
      if (name == "values") {
        Array out;
        for (const auto& [k, v] : obj.entries) out.push_back(v);
        return Value::list(std::move(out));
      }
      if (name == "get") {
        const Value* hit = a0.is_string() ? obj.find(a0.s) : nullptr;
        if (hit != nullptr) return *hit;
        Value def = args.get(1, "default");
        return def.is_undefined() ? Value::none() : def;
      }
    }
    fail("unknown method " + self.type_name() + "." + name + "()", args.line);
  });
}

bool has_method(const Value& v, const std::string& name) {
  static const char* kString[] = {"upper", "lower", "strip", "lstrip", "rstrip", "title", "capitalize", "split",
                                  "startswith", "endswith", "replace", "find", "count", "join", "format"};
  static const char* kList[] = {"append", "extend", "pop", "index", "count"};
  static const char* kObject[] = {"items", "keys", "values", "get"};
  auto in = [&](const auto& table) {
    return std::any_of(std::begin(table), std::end(table), [&](const char* m) { return name == m; });
  };
  if (v.is_string()) return in(kString);
  if (v.is_array()) return in(kList);
  if (v.is_object() && !v.object->is_namespace) return in(kObject);
  return false;
}

// Month names in English, as the reference renderer prints with its default locale.
std::string strftime_now(const std::string& format) {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  static const char* kShort[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  static const char* kLong[] = {"January", "February", "March",     "April",   "May",      "June",
                                "July",    "August",   "September", "October", "November", "December"};
  auto pad2 = [](int n) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%02d", n);
    return std::string(buf);
  };
  std::string out;
  for (size_t k = 0; k < format.size(); ++k) {
    if (format[k] != '%' || k + 1 >= format.size()) {
      out += format[k];
      continue;
    }
    switch (format[++k]) {
      case 'Y': out += std::to_string(local.tm_year + 1900); break;
      case 'm': out += pad2(local.tm_mon + 1); break;
      case 'd': out += pad2(local.tm_mday); break;
      case 'b': out += kShort[local.tm_mon]; break;
      case 'B': out += kLong[local.tm_mon]; break;
      case 'H': out += pad2(local.tm_hour); break;
      case 'M': out += pad2(local.tm_min); break;
      case '%': out += '%'; break;
      default: out += '%'; out += format[k];
    }
  }
  return out;
}

}  // namespace

Array iterate(const Value& value, int line) {
  switch (value.kind) {
    case Value::Kind::kArray: return *value.array;
    case Value::Kind::kObject: {
      Array keys;
      for (const auto& [k, v] : value.object->entries) keys.push_back(Value::string(k));
      return keys;
    }
    case Value::Kind::kString: {
      Array chars;
      for (auto& c : utf8::split_chars(value.s)) chars.push_back(Value::string(std::move(c)));
      return chars;
    }
    case Value::Kind::kUndefined: return {};
    default: fail("cannot iterate over a " + value.type_name(), line);
  }
}

Value get_item(const Value& value, const Value& key) {
  if (value.is_array() || value.is_string()) {
    if (key.kind != Value::Kind::kInt) return Value();
    if (value.is_array()) {
      const int64_t n = static_cast<int64_t>(value.array->size());
      int64_t k = key.i < 0 ? key.i + n : key.i;
      return k >= 0 && k < n ? (*value.array)[static_cast<size_t>(k)] : Value();
    }
    auto chars = utf8::split_chars(value.s);
    const int64_t n = static_cast<int64_t>(chars.size());
    int64_t k = key.i < 0 ? key.i + n : key.i;
    return k >= 0 && k < n ? Value::string(chars[static_cast<size_t>(k)]) : Value();
  }
  if (value.is_object()) {
    const Value* hit = key.is_string() ? value.object->find(key.s) : value.object->find(key.str());
    return hit != nullptr ? *hit : Value();
  }
  return Value();
}

Value get_attribute(const Value& value, const std::string& name) {
  if (value.is_object()) {
    if (const Value* hit = value.object->find(name)) return *hit;
  }
  if (has_method(value, name)) return make_method(value, name);
  return Value();
}

bool apply_test(const std::string& name, const Value& v, const std::vector<Value>& args, int line) {
  using K = Value::Kind;
  auto arg = [&](size_t k) -> const Value& {
    if (k >= args.size()) fail("test '" + name + "' needs an argument", line);
    return args[k];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.kind == K::kBool;
  if (name == "true") return v.kind == K::kBool && v.b;
  if (name == "false") return v.kind == K::kBool && !v.b;
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind == K::kInt;
  if (name == "float") return v.kind == K::kFloat;
  if (name == "iterable") return v.is_array() || v.is_string() || v.is_object();
  if (name == "sequence") return v.is_array() || v.is_string() || v.is_object();
  if (name == "mapping") return v.is_object();
  if (name == "callable") return v.kind == K::kCallable;
  if (name == "odd" || name == "even") {
    if (v.kind != K::kInt) fail("test '" + name + "' needs an integer, got " + v.type_name(), line);
    return (v.i % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    int64_t d = to_int(arg(0), 0);
    if (d == 0) fail("divisibleby 0", line);
    return v.kind == K::kInt && v.i % d == 0;
  }
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return equals(v, arg(0));
  if (name == "ne" || name == "!=") return !equals(v, arg(0));
  if (name == "lt" || name == "<") return less_than(v, arg(0));
  if (name == "gt" || name == ">") return less_than(arg(0), v);
  if (name == "le" || name == "<=") return !less_than(arg(0), v);
  if (name == "ge" || name == ">=") return !less_than(v, arg(0));
  if (name == "in") {
    const Value& c = arg(0);
    if (c.is_string()) return v.is_string() && c.s.find(v.s) != std::string::npos;
    if (c.is_array()) return std::any_of(c.array->begin(), c.array->end(), [&](const Value& x) { return equals(x, v); });
    if (c.is_object()) return v.is_string() && c.object->find(v.s) != nullptr;
    return false;
  }
  if (name == "lower") return v.is_string() && to_lower(v.s) == v.s;
  if (name == "upper") return v.is_string() && to_upper(v.s) == v.s;
  fail("unsupported test '" + name + "'", line);
}

namespace {

// One filter application: the name it was called by (some filters answer to
// several), the value before the bar, and the arguments.
struct Filter {
  const std::string& name;
  const Value& v;
  const CallArgs& args;
  int line;
  Value a0;

  const std::string& need_string() const {
    if (!v.is_string()) fail("filter '" + name + "' expects a string, got " + v.type_name(), line);
    return v.s;
  }
};
using FilterFn = Value (*)(const Filter&);

Value tojson_filter(const Filter& f) {
  Value indent = f.args.get(0, "indent");
  return Value::string(to_json(f.v, indent.kind == Value::Kind::kInt ? static_cast<int>(std::clamp<int64_t>(indent.i, 0, 32)) : 0));
}

Value float_filter(const Filter& f) {
  if (f.v.is_number()) return Value::number(f.v.as_double());
  if (f.v.is_string()) {
    char* end = nullptr;
    double x = std::strtod(f.v.s.c_str(), &end);
    if (end != f.v.s.c_str() && *end == '\0') return Value::number(x);
  }
  Value def = f.args.get(0, "default");
  return Value::number(def.is_number() ? def.as_double() : 0.0);
}

Value abs_filter(const Filter& f) {
  if (f.v.kind == Value::Kind::kInt) return Value::integer(f.v.i < 0 ? -f.v.i : f.v.i);
  if (f.v.kind == Value::Kind::kFloat) return Value::number(std::fabs(f.v.f));
  fail("filter 'abs' expects a number", f.line);
}

Value round_filter(const Filter& f) {
  if (!f.v.is_number()) fail("filter 'round' expects a number", f.line);
  const int64_t precision = to_int(f.args.get(0, "precision"), 0);
  const Value method = f.args.get(1, "method");
  const double scale = std::pow(10.0, static_cast<double>(precision));
  double x = f.v.as_double() * scale;
  if (method.is_string() && method.s == "floor") x = std::floor(x);
  else if (method.is_string() && method.s == "ceil") x = std::ceil(x);
  else x = std::nearbyint(x);  // Python rounds half to even
  return Value::number(x / scale);
}

Value default_filter(const Filter& f) {
  const bool boolean = f.args.get(1, "boolean").truthy();
  if (f.v.is_undefined() || (boolean && !f.v.truthy())) return f.a0.is_undefined() ? Value::string("") : f.a0;
  return f.v;
}

Value first_or_last_filter(const Filter& f) {
  Array items = as_list(f.v);
  if (items.empty()) return Value();
  return f.name == "first" ? items.front() : items.back();
}

Value items_filter(const Filter& f) {
  if (f.v.is_undefined()) return Value::list();
  if (!f.v.is_object()) fail("filter 'items' expects a mapping, got " + f.v.type_name(), f.line);
  CallArgs none;
  return get_attribute(f.v, "items").callable->fn(none);
}

Value dictsort_filter(const Filter& f) {
  if (!f.v.is_object()) fail("filter 'dictsort' expects a mapping", f.line);
  std::vector<std::pair<std::string, Value>> entries = f.v.object->entries;
  std::stable_sort(entries.begin(), entries.end(), [](const auto& x, const auto& y) { return to_lower(x.first) < to_lower(y.first); });
  Array out;
  for (auto& [k, val] : entries) out.push_back(Value::list({Value::string(k), val}));
  return Value::list(std::move(out));
}

Value join_filter(const Filter& f) {
  const Value sep = f.args.get(0, "d");
  const Value attribute = f.args.get(1, "attribute");
  std::string out;
  Array items = as_list(f.v);
  for (size_t k = 0; k < items.size(); ++k) {
    if (k > 0) out += sep.is_undefined() ? "" : sep.str();
    out += (attribute.is_undefined() ? items[k] : attribute_path(items[k], attribute.str())).str();
  }
  return Value::string(out);
}

Value replace_filter(const Filter& f) {
  const Value to = f.args.get(1, "new");
  if (!f.a0.is_string() || !to.is_string()) fail("filter 'replace' expects two strings", f.line);
  return Value::string(replace_all(f.need_string(), f.a0.s, to.s, to_int(f.args.get(2, "count"), -1)));
}

Value reverse_filter(const Filter& f) {
  if (f.v.is_string()) {
    auto chars = utf8::split_chars(f.v.s);
    std::string out;
    for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
    return Value::string(out);
  }
  Array items = as_list(f.v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value sort_filter(const Filter& f) {
  Array items = as_list(f.v);
  const bool reverse = f.args.get(0, "reverse").truthy();
  const Value attribute = f.args.get(2, "attribute");
  auto key = [&](const Value& x) { return attribute.is_undefined() ? x : attribute_path(x, attribute.str()); };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    return reverse ? less_than(key(y), key(x)) : less_than(key(x), key(y));
  });
  return Value::list(std::move(items));
}

Value unique_filter(const Filter& f) {
  Array out;
  for (const auto& x : as_list(f.v))
    if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equals(x, y); })) out.push_back(x);
  return Value::list(std::move(out));
}

Value sum_filter(const Filter& f) {
  Value total = Value::integer(0);
  for (const auto& x : as_list(f.v)) {
    if (!x.is_number()) fail("filter 'sum' expects numbers", f.line);
    total = total.kind == Value::Kind::kInt && x.kind == Value::Kind::kInt ? Value::integer(total.i + x.i)
                                                                           : Value::number(total.as_double() + x.as_double());
  }
  return total;
}

Value min_or_max_filter(const Filter& f) {
  Array items = as_list(f.v);
  if (items.empty()) return Value();
  Value best = items[0];
  for (const auto& x : items)
    if (f.name == "min" ? less_than(x, best) : less_than(best, x)) best = x;
  return best;
}

Value indent_filter(const Filter& f) {
  const int64_t width = std::clamp<int64_t>(to_int(f.args.get(0, "width"), 4), 0, 1024);
  const bool first = f.args.get(1, "first").truthy();
  const bool blank = f.args.get(2, "blank").truthy();
  const std::string pad(static_cast<size_t>(width), ' ');
  std::string out;
  const std::string& s = f.need_string();
  size_t start = 0;
  bool is_first = true;
  while (start <= s.size()) {
    size_t nl = s.find('\n', start);
    std::string line_text = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if ((!is_first || first) && (blank || !line_text.empty())) out += pad;
    out += line_text;
    if (nl == std::string::npos) break;
    out += '\n';
    start = nl + 1;
    is_first = false;
  }
  return Value::string(out);
}

// select, reject, selectattr, rejectattr.
Value select_filter(const Filter& f) {
  const bool by_attr = f.name == "selectattr" || f.name == "rejectattr";
  const bool keep_if = f.name == "select" || f.name == "selectattr";
  size_t next = 0;
  Value attribute;
  if (by_attr) {
    attribute = f.args.get(next++, nullptr);
    if (!attribute.is_string()) fail("filter '" + f.name + "' needs an attribute name", f.line);
  }
  Value test = f.args.get(next++, nullptr);
  std::vector<Value> test_args(f.args.positional.begin() + static_cast<std::ptrdiff_t>(std::min(next, f.args.positional.size())),
                               f.args.positional.end());
  Array out;
  for (const auto& x : as_list(f.v)) {
    Value subject = by_attr ? attribute_path(x, attribute.s) : x;
    bool pass = test.is_undefined() ? subject.truthy() : apply_test(test.str(), subject, test_args, f.line);
    if (pass == keep_if) out.push_back(x);
  }
  return Value::list(std::move(out));
}

Value map_filter(const Filter& f) {
  Array out;
  for (const auto& [k, val] : f.args.keyword) {
    if (k == "attribute") {
      const Value def = f.args.get(99, "default");
      for (const auto& x : as_list(f.v)) {
        Value got = attribute_path(x, val.str());
        out.push_back(got.is_undefined() && !def.is_undefined() ? def : got);
      }
      return Value::list(std::move(out));
    }
  }
  if (!f.a0.is_string()) fail("filter 'map' needs a filter name or attribute=", f.line);
  CallArgs rest;
  rest.line = f.line;
  rest.positional.assign(f.args.positional.begin() + 1, f.args.positional.end());
  for (const auto& x : as_list(f.v)) out.push_back(apply_filter(f.a0.s, x, rest));
  return Value::list(std::move(out));
}

// Every filter by the names templates call it by.
const std::unordered_map<std::string_view, FilterFn>& filters() {
  static const std::unordered_map<std::string_view, FilterFn> table = {
      {"trim", [](const Filter& f) { return Value::string(strip(f.need_string(), true, true, f.args.get(0, "chars"))); }},
      {"upper", [](const Filter& f) { return Value::string(to_upper(f.need_string())); }},
      {"lower", [](const Filter& f) { return Value::string(to_lower(f.need_string())); }},
      {"title", [](const Filter& f) { return Value::string(title_case(f.need_string())); }},
      {"capitalize", [](const Filter& f) { return Value::string(capitalize(f.need_string())); }},
      {"length", [](const Filter& f) { return Value::integer(static_cast<int64_t>(length(f.v))); }},
      {"count", [](const Filter& f) { return Value::integer(static_cast<int64_t>(length(f.v))); }},
      {"string", [](const Filter& f) { return Value::string(f.v.str()); }},
      {"safe", [](const Filter& f) { return f.v; }},
      {"e", [](const Filter& f) { return Value::string(html_escape(f.v.str())); }},
      {"escape", [](const Filter& f) { return Value::string(html_escape(f.v.str())); }},
      {"tojson", tojson_filter},
      {"int", [](const Filter& f) { return Value::integer(to_int(f.v, to_int(f.args.get(0, "default"), 0))); }},
      {"float", float_filter},
      {"abs", abs_filter},
      {"round", round_filter},
      {"default", default_filter},
      {"d", default_filter},
      {"first", first_or_last_filter},
      {"last", first_or_last_filter},
      {"list", [](const Filter& f) { return Value::list(as_list(f.v)); }},
      {"items", items_filter},
      {"dictsort", dictsort_filter},
      {"join", join_filter},
      {"replace", replace_filter},
      {"reverse", reverse_filter},
      {"sort", sort_filter},
      {"unique", unique_filter},
      {"sum", sum_filter},
      {"min", min_or_max_filter},
      {"max", min_or_max_filter},
      {"indent", indent_filter},
      {"select", select_filter},
      {"reject", select_filter},
      {"selectattr", select_filter},
      {"rejectattr", select_filter},
      {"map", map_filter},
      {"attr", [](const Filter& f) { return get_attribute(f.v, f.a0.str()); }},
      {"format", [](const Filter& f) { return Value::string(percent_format(f.need_string(), f.args.positional)); }},
      {"wordcount",
       [](const Filter& f) { return Value::integer(static_cast<int64_t>(split(f.need_string(), Value(), -1).size())); }},
  };
  return table;
}

}  // namespace

Value apply_filter(const std::string& name, const Value& v, const CallArgs& args) {
  const auto it = filters().find(name);
  if (it == filters().end()) fail("unsupported filter '" + name + "'", args.line);
  return it->second(Filter{name, v, args, args.line, args.get(0, nullptr)});
}

void add_globals(Object& globals) {
  globals.set("range", Value::function("range", [](CallArgs& args) {
    int64_t start = 0, stop = 0, step = 1;
    const size_t n = args.positional.size();
    if (n == 1) {
      stop = to_int(args.positional[0], 0);
    } else if (n >= 2) {
      start = to_int(args.positional[0], 0);
      stop = to_int(args.positional[1], 0);
      if (n >= 3) step = to_int(args.positional[2], 1);
    } else {
      fail("range() needs 1 to 3 arguments", args.line);
    }
    if (step == 0) fail("range() step must not be zero", args.line);
    Array out;
    for (int64_t x = start; step > 0 ? x < stop : x > stop; x += step) {
      if (out.size() >= 10'000'000) fail("range() is too long", args.line);
      out.push_back(Value::integer(x));
    }
    return Value::list(std::move(out));
  }));
  globals.set("namespace", Value::function("namespace", [](CallArgs& args) {
    Value ns = Value::namespace_object();
    if (!args.positional.empty()) {
      const Value& init = args.positional[0];
      if (!init.is_object()) fail("namespace() takes a mapping or keyword arguments", args.line);
      for (const auto& [k, v] : init.object->entries) ns.object->set(k, v);
    }
    for (const auto& [k, v] : args.keyword) ns.object->set(k, v);
    return ns;
  }));
  globals.set("dict", Value::function("dict", [](CallArgs& args) {
    Value d = Value::dict();
    if (!args.positional.empty() && args.positional[0].is_object())
      for (const auto& [k, v] : args.positional[0].object->entries) d.object->set(k, v);
    for (const auto& [k, v] : args.keyword) d.object->set(k, v);
    return d;
  }));
  globals.set("raise_exception", Value::function("raise_exception", [](CallArgs& args) -> Value {
    fail("the template raised an exception: " + args.get(0, "message").str(), args.line);
  }));
  globals.set("strftime_now", Value::function("strftime_now", [](CallArgs& args) {
    return Value::string(strftime_now(args.get(0, "format").str()));
  }));
}

}  // namespace osprey::tmpl
