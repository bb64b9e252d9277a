#include <cstdio>

#include "formats/gguf.h"

namespace osprey {

const char* gguf_type_name(GgufType t) {
  static const char* const kNames[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                       "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? kNames[i] : "unknown";
}

bool gguf_type_is_integer(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kU16: case GgufType::kI16:
    case GgufType::kU32: case GgufType::kI32: case GgufType::kU64: case GgufType::kI64:
    case GgufType::kBool:
      return true;
    default:
      return false;
  }
}

GgufValue GgufValue::scalar_int(GgufType t, int64_t v) {
  GgufValue g;
  g.type = t;
  g.i = v;
  return g;
}

GgufValue GgufValue::f32(float v) {
  GgufValue g;
  g.type = GgufType::kF32;
  g.f = v;
  return g;
}

GgufValue GgufValue::str(std::string v) {
  GgufValue g;
  g.type = GgufType::kString;
  g.s = std::move(v);
  return g;
}

GgufValue GgufValue::string_array(std::vector<std::string> v) {
  GgufValue g;
  g.type = GgufType::kArray;
  g.elem_type = GgufType::kString;
  g.strings = std::move(v);
  return g;
}

GgufValue GgufValue::int_array(GgufType elem, std::vector<int64_t> v) {
  GgufValue g;
  g.type = GgufType::kArray;
  g.elem_type = elem;
  g.ints = std::move(v);
  return g;
}

GgufValue GgufValue::float_array(std::vector<double> v) {
  GgufValue g;
  g.type = GgufType::kArray;
  g.elem_type = GgufType::kF32;
  g.floats = std::move(v);
  return g;
}

size_t GgufValue::array_size() const {
  if (type != GgufType::kArray) return 0;
  if (elem_type == GgufType::kString) return strings.size();
  if (elem_type == GgufType::kArray) return nested.size();
  if (elem_type == GgufType::kF32 || elem_type == GgufType::kF64) return floats.size();
  return ints.size();
}

namespace {
std::string quote(const std::string& s, size_t max_len) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < max_len; ++i) {
    const char c = s[i];
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '"') out += "\\\"";
    else if (static_cast<unsigned char>(c) < 0x20) out += "?";
    else out += c;
  }
  if (s.size() > max_len) out += "...";
  return out + "\"";
}
}  // namespace

std::string GgufValue::to_display(size_t max_items) const {
  char buf[64];
  switch (type) {
    case GgufType::kString:
      return quote(s, 120);
    case GgufType::kF32:
    case GgufType::kF64:
      std::snprintf(buf, sizeof buf, "%g", f);
      return buf;
    case GgufType::kBool:
      return i ? "true" : "false";
    case GgufType::kU64:
      return std::to_string(static_cast<uint64_t>(i));
    case GgufType::kArray: {
      const size_t n = array_size();
      std::string out = std::string("[") + gguf_type_name(elem_type) + " x " + std::to_string(n) + "]";
      if (n == 0) return out;
      out += " ";
      for (size_t k = 0; k < n && k < max_items; ++k) {
        if (k) out += ", ";
        if (elem_type == GgufType::kString) out += quote(strings[k], 40);
        else if (elem_type == GgufType::kArray) out += nested[k].to_display(2);
        else if (elem_type == GgufType::kF32 || elem_type == GgufType::kF64) {
          std::snprintf(buf, sizeof buf, "%g", floats[k]);
          out += buf;
        } else out += std::to_string(ints[k]);
      }
      if (n > max_items) out += ", ...";
      return out;
    }
    default:
      return std::to_string(i);
  }
}

int64_t GgufTensorInfo::rows() const {
  int64_t r = 1;
  for (size_t d = 1; d < dims.size(); ++d) r *= dims[d];
  return r;
}

}  // namespace osprey
