#include "grammar/json_schema.h"

#include <cmath>
#include <optional>
#include <map>
#include <set>
#include <vector>

namespace osprey::grammar {
namespace {

using json = nlohmann::ordered_json;

// Thrown inside the compiler; `path` names the keyword.
struct SchemaError {
  std::string path;
  std::string message;
};

std::string join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

// A GBNF string literal for raw bytes.
std::string literal(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// The primitives every grammar may use. Whitespace between tokens is at most
// one space or a newline with some indentation, so output stays compact and
// a model cannot pad it forever. Numbers and escapes are bounded for the same
// reason; \u escapes exclude the surrogates, which no strict parser accepts alone.
const char* kPrimitives = R"(ws ::= ( " " | "\n" [ ]{0,16} )?
char ::= [^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" ( [0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} ) )
string ::= "\"" char* "\""
integer ::= "-"? ( "0" | [1-9] [0-9]{0,15} )
number ::= integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?
boolean ::= "true" | "false"
null ::= "null"
value ::= object | array | string | number | boolean | null
object ::= "{" ws ( string ws ":" ws value ( ws "," ws string ws ":" ws value )* )? ws "}"
array ::= "[" ws ( value ( ws "," ws value )* )? ws "]"
)";

// Characters a pattern may produce inside a JSON string without an escape.
const char* kPlainChar = R"([^"\\\x00-\x1f])";

class RegexCompiler {
 public:
  RegexCompiler(const std::string& pattern, const std::string& path) : p_(pattern), path_(path) {}

  std::string compile() {
    bool anchored_start = false, anchored_end = false;
    if (!p_.empty() && p_[0] == '^') anchored_start = true, pos_ = 1;
    std::string body = alternation();
    if (pos_ < p_.size() && p_[pos_] == '$' && pos_ + 1 == p_.size()) anchored_end = true, ++pos_;
    if (pos_ != p_.size()) fail("unexpected '" + std::string(1, p_[pos_]) + "'");
    const std::string any = std::string(kPlainChar) + "*";
    return "\"\\\"\" " + (anchored_start ? "" : any + " ") + "( " + body + " ) " + (anchored_end ? "" : any + " ") + "\"\\\"\"";
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    // A hostile pattern can be megabytes: quote its start only, cut between characters.
    size_t shown = std::min<size_t>(p_.size(), 80);
    while (shown < p_.size() && shown > 0 && (static_cast<unsigned char>(p_[shown]) & 0xC0) == 0x80) --shown;
    const std::string quoted = json(p_.substr(0, shown)).dump() + (shown < p_.size() ? "..." : "");
    throw SchemaError{path_, "'pattern' " + quoted + " is not supported: " + what +
                                 " (supported: literals, ., [classes], \\d \\w \\s, groups, |, * + ? {m,n}, ^ $)"};
  }
  bool at(char c) const { return pos_ < p_.size() && p_[pos_] == c; }

  std::string alternation() {
    std::string out = sequence();
    while (at('|')) {
      ++pos_;
      out += " | " + sequence();
    }
    return out;
  }

  std::string sequence() {
    std::string out;
    while (pos_ < p_.size() && !at('|') && !at(')') && !(at('$') && pos_ + 1 == p_.size())) {
      std::string a = atom();
      a = quantified(a);
      out += (out.empty() ? "" : " ") + a;
    }
    return out.empty() ? "\"\"" : out;
  }

  std::string quantified(const std::string& a) {
    std::string q;
    if (at('*') || at('+') || at('?')) {
      q = std::string(1, p_[pos_++]);
    } else if (at('{')) {
      const size_t close = p_.find('}', pos_);
      if (close == std::string::npos) fail("an unclosed '{'");
      q = p_.substr(pos_, close - pos_ + 1);
      for (char c : q.substr(1, q.size() - 2))
        if (!std::isdigit(static_cast<unsigned char>(c)) && c != ',') fail("a bad repetition " + q);
      pos_ = close + 1;
    } else {
      return a;
    }
    if (at('?') || at('+')) fail("lazy or possessive quantifiers");
    return "( " + a + " )" + q;
  }

  // One character of the pattern as it appears in JSON text.
  static std::string json_char(uint32_t c) {
    if (c == '"') return "\"\\\\\\\"\"";   // the two bytes \"
    if (c == '\\') return "\"\\\\\\\\\"";  // the two bytes \\ .
    std::string s;
    if (c < 0x80) s = std::string(1, static_cast<char>(c));
    else {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      return "\"" + std::string(buf) + "\"";
    }
    return literal(s);
  }

  std::string escape_class(char e, bool in_class) {
    switch (e) {
      case 'd': return in_class ? "0-9" : "[0-9]";
      case 'w': return in_class ? "a-zA-Z0-9_" : "[a-zA-Z0-9_]";
      case 's': return in_class ? " " : "[ ]";
      case 'D': if (!in_class) return "[^0-9\"\\\\\\x00-\\x1f]"; break;
      case 'W': if (!in_class) return "[^a-zA-Z0-9_\"\\\\\\x00-\\x1f]"; break;
      case 'S': if (!in_class) return "[^ \"\\\\\\x00-\\x1f]"; break;
      default: break;
    }
    return "";
  }

  std::string atom() {
    const char c = p_[pos_];
    if (c == '(') {
      // Groups recurse; a pattern is request text, so their depth is capped
      // far inside the stack (and the grammar's own limit on parentheses).
      if (++depth_ > 256) fail("groups nested more than 256 deep");
      ++pos_;
      if (at('?')) {
        if (pos_ + 1 < p_.size() && p_[pos_ + 1] == ':') pos_ += 2;
        else fail("lookaround or named groups");
      }
      std::string inner = alternation();
      if (!at(')')) fail("an unclosed '('");
      ++pos_;
      --depth_;
      return "( " + inner + " )";
    }
    if (c == '[') return char_class();
    if (c == '.') {
      ++pos_;
      return "[^\"\\\\\\x00-\\x1f]";
    }
    if (c == '\\') {
      if (pos_ + 1 >= p_.size()) fail("a trailing backslash");
      const char e = p_[pos_ + 1];
      pos_ += 2;
      std::string cls = escape_class(e, false);
      if (!cls.empty()) return cls;
      if (std::isalnum(static_cast<unsigned char>(e))) {
        if (e == 'n' || e == 't' || e == 'r') return literal(std::string("\\") + e);
        fail(std::string("the escape \\") + e);
      }
      return json_char(static_cast<unsigned char>(e));
    }
    if (c == '*' || c == '+' || c == '?' || c == '{') fail("a quantifier with nothing before it");
    if (c == '^' || c == '$') fail("an anchor inside the pattern");
    return json_char(next_codepoint());
  }

  uint32_t next_codepoint() {
    const unsigned char c = static_cast<unsigned char>(p_[pos_]);
    const int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int i = 1; i < len && pos_ + static_cast<size_t>(i) < p_.size(); ++i)
      cp = (cp << 6) | (static_cast<unsigned char>(p_[pos_ + static_cast<size_t>(i)]) & 0x3F);
    pos_ += static_cast<size_t>(len);
    return cp;
  }

  // A class keeps only what a JSON string holds unescaped: the quote, the
  // backslash and control characters are left out, which narrows it.
  std::string char_class() {
    ++pos_;
    bool negated = false;
    if (at('^')) negated = true, ++pos_;
    std::string body;
    bool first = true;
    while (pos_ < p_.size() && (!at(']') || first)) {
      first = false;
      if (at('\\')) {
        if (pos_ + 1 >= p_.size()) fail("a trailing backslash");
        const char e = p_[pos_ + 1];
        pos_ += 2;
        std::string cls = escape_class(e, true);
        if (!cls.empty()) {
          body += cls;
          continue;
        }
        if (std::isalnum(static_cast<unsigned char>(e))) fail(std::string("the escape \\") + e + " in a class");
        if (e == '"' || e == '\\') continue;
        body += e == ']' || e == '[' || e == '-' || e == '^' ? std::string("\\") + e : std::string(1, e);
        continue;
      }
      const uint32_t cp = next_codepoint();
      if (cp == '"' || cp == '\\' || cp < 0x20) continue;
      std::string s;
      if (cp < 0x80) s = std::string(1, static_cast<char>(cp));
      else {
        char buf[16];
        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
        s = buf;
      }
      body += s;
    }
    if (!at(']')) fail("an unclosed '['");
    ++pos_;
    if (negated) return "[^" + body + "\"\\\\\\x00-\\x1f]";
    if (body.empty()) fail("a class that holds only characters JSON must escape");
    return "[" + body + "]";
  }

  const std::string& p_;
  std::string path_;
  size_t pos_ = 0;
  int depth_ = 0;  // of open groups
};

// Decimal integers in [lo, hi] as GBNF. Digit strings of one length at a
// time, each split at the first digit where the bounds differ.
std::string same_length_range(const std::string& lo, const std::string& hi) {
  if (lo.empty()) return "\"\"";
  if (lo == hi) return literal(lo);
  if (lo[0] == hi[0]) return literal(lo.substr(0, 1)) + " " + same_length_range(lo.substr(1), hi.substr(1));
  const size_t rest = lo.size() - 1;
  const bool lo_zeros = lo.find_first_not_of('0', 1) == std::string::npos;
  const bool hi_nines = hi.find_first_not_of('9', 1) == std::string::npos;
  auto any = [&](size_t n) { return n == 0 ? std::string() : " [0-9]{" + std::to_string(n) + "}"; };
  std::vector<std::string> alts;
  char from = lo[0], to = hi[0];
  if (!lo_zeros) {
    alts.push_back(literal(lo.substr(0, 1)) + " ( " + same_length_range(lo.substr(1), std::string(rest, '9')) + " )");
    ++from;
  }
  if (!hi_nines) --to;
  if (from <= to) alts.push_back(std::string("[") + from + "-" + to + "]" + any(rest));
  if (!hi_nines) alts.push_back(literal(hi.substr(0, 1)) + " ( " + same_length_range(std::string(rest, '0'), hi.substr(1)) + " )");
  std::string out;
  for (const auto& a : alts) out += (out.empty() ? "" : " | ") + a;
  return "( " + out + " )";
}

// Non-negative integers in [lo, hi]; hi < 0: no upper bound.
std::string natural_range(int64_t lo, int64_t hi) {
  std::vector<std::string> alts;
  const std::string los = std::to_string(lo);
  const size_t max_len = hi < 0 ? 19 : std::to_string(hi).size();
  for (size_t len = los.size(); len <= max_len; ++len) {
    const int64_t first = len == 1 ? 0 : static_cast<int64_t>(std::pow(10.0, static_cast<double>(len - 1)));
    const int64_t last = len >= 19 ? INT64_MAX : static_cast<int64_t>(std::pow(10.0, static_cast<double>(len))) - 1;
    const int64_t a = std::max(lo, first);
    const int64_t b = hi < 0 ? last : std::min(hi, last);
    if (a > b) continue;
    if (hi < 0 && len == los.size() + 1) {
      // Every longer number: no upper bound.
      alts.push_back("[1-9] [0-9]{" + std::to_string(len - 1) + ",15}");
      break;
    }
    alts.push_back(same_length_range(std::to_string(a), std::to_string(b)));
  }
  std::string out;
  for (const auto& a : alts) out += (out.empty() ? "" : " | ") + a;
  return "( " + out + " )";
}

class Compiler {
 public:
  explicit Compiler(const json& root) : root_(root) {}

  std::string compile() {
    const std::string top = visit(root_, "", "root-value");
    std::string out = "root ::= ws " + top + "\n";
    for (const auto& name : order_) out += name + " ::= " + rules_[name] + "\n";
    return out + kPrimitives;
  }

 private:
  // A rule for `body`, named from `hint`; the same body reuses its rule.
  std::string rule(const std::string& hint, const std::string& body) {
    if (auto it = by_body_.find(body); it != by_body_.end()) return it->second;
    std::string base;
    for (char c : hint) base += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
    if (base.empty() || base == "root") base = "r";
    std::string name = base;
    for (int i = 2; rules_.count(name) || reserved(name); ++i) name = base + "-" + std::to_string(i);
    rules_[name] = body;
    order_.push_back(name);
    by_body_[body] = name;
    return name;
  }
  static bool reserved(const std::string& n) {
    static const std::set<std::string> kNames = {"ws", "char", "string", "integer", "number", "boolean", "null",
                                                 "value", "object", "array", "root"};
    return kNames.count(n) > 0;
  }

  [[noreturn]] static void fail(const std::string& path, const std::string& message) { throw SchemaError{path, message}; }

  // The dotted path of a "#/..." reference ("#/$defs/a/items/0" -> "$defs.a.items[0]").
  static std::string ref_path(const std::string& ref) {
    std::string out;
    size_t start = 2;
    while (ref.size() > 2 && start <= ref.size()) {
      size_t end = ref.find('/', start);
      if (end == std::string::npos) end = ref.size();
      const std::string key = ref.substr(start, end - start);
      const bool index = !key.empty() && key.find_first_not_of("0123456789") == std::string::npos;
      out += index ? "[" + key + "]" : (out.empty() ? key : "." + key);
      start = end + 1;
    }
    return out;
  }

  const json& resolve(const std::string& ref, const std::string& path) {
    if (ref == "#") return root_;
    if (ref.rfind("#/", 0) != 0) fail(path, "'$ref' " + json(ref).dump() + " is not supported: only references within the schema ('#/...')");
    const json* at = &root_;
    size_t start = 2;
    while (start <= ref.size()) {
      size_t end = ref.find('/', start);
      if (end == std::string::npos) end = ref.size();
      std::string key = ref.substr(start, end - start);
      for (size_t k; (k = key.find("~1")) != std::string::npos;) key.replace(k, 2, "/");
      for (size_t k; (k = key.find("~0")) != std::string::npos;) key.replace(k, 2, "~");
      if (at->is_object() && at->contains(key)) at = &(*at)[key];
      else if (at->is_array() && !key.empty() && key.find_first_not_of("0123456789") == std::string::npos &&
               std::stoul(key) < at->size())
        at = &(*at)[std::stoul(key)];
      else fail(path, "'$ref' " + json(ref).dump() + " points at nothing in the schema");
      start = end + 1;
    }
    return *at;
  }

  static void check_keywords(const json& s, const std::string& path) {
    static const std::set<std::string> kKnown = {
        "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems",
        "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions", "minLength", "maxLength",
        "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "format", "nullable",
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
        "writeOnly", "$anchor"};
    for (auto it = s.begin(); it != s.end(); ++it)
      if (!kKnown.count(it.key()))
        fail(join(path, it.key()), "the JSON Schema keyword '" + it.key() + "' is not supported");
    for (const char* defs : {"$defs", "definitions"})
      if (s.contains(defs) && !s[defs].is_object()) fail(join(path, defs), std::string("'") + defs + "' must be an object of schemas");
  }

  static int64_t count(const json& s, const char* key, const std::string& path) {
    const json& v = s[key];
    if (!v.is_number_integer() && !v.is_number_unsigned() && !(v.is_number_float() && v.get<double>() == std::floor(v.get<double>())))
      fail(join(path, key), std::string("'") + key + "' must be a non-negative integer");
    const double d = v.get<double>();
    if (d < 0 || d > 100000) fail(join(path, key), std::string("'") + key + "' must be between 0 and 100000");
    return static_cast<int64_t>(d);
  }

  std::string visit(const json& s, const std::string& path, const std::string& hint) {
    if (++depth_ > 256) fail(path, "the schema nests more than 256 levels");
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{depth_};
    if (s.is_boolean()) {
      if (!s.get<bool>()) fail(path, "the schema 'false' allows no value");
      return "value";
    }
    if (!s.is_object()) fail(path, "a schema must be an object or a boolean");
    check_keywords(s, path);
    if (s.contains("nullable") && !s["nullable"].is_boolean()) fail(join(path, "nullable"), "'nullable' must be true or false");

    if (s.contains("$ref")) {
      for (auto it = s.begin(); it != s.end(); ++it) {
        static const std::set<std::string> kBeside = {"$ref", "$defs", "definitions", "title", "description", "default",
                                                      "examples", "$comment", "$schema", "$id", "deprecated"};
        if (!kBeside.count(it.key())) fail(join(path, it.key()), "keywords beside '$ref' are not supported ('" + it.key() + "')");
      }
      if (!s["$ref"].is_string()) fail(join(path, "$ref"), "'$ref' must be a string");
      const std::string ref = s["$ref"];
      if (auto it = refs_.find(ref); it != refs_.end()) return it->second;
      // Named before it is compiled, so that a recursive schema refers to itself.
      std::string name = ref == "#" ? "root-value" : ref.substr(ref.rfind('/') + 1);
      std::string safe;
      for (char c : name) safe += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
      std::string rule_name = "ref-" + safe;
      for (int i = 2; rules_.count(rule_name); ++i) rule_name = "ref-" + safe + "-" + std::to_string(i);
      rules_[rule_name] = "";
      order_.push_back(rule_name);
      refs_[ref] = rule_name;
      const json& target = resolve(ref, join(path, "$ref"));
      // Errors inside the target name where it is, not where it is used.
      rules_[rule_name] = visit(target, ref == "#" ? "" : ref_path(ref), rule_name);
      return rule_name;
    }
    if (s.contains("const")) return rule(hint + "-const", literal(s["const"].dump(-1, ' ', false, json::error_handler_t::replace)));
    if (s.contains("enum")) {
      const json& e = s["enum"];
      if (!e.is_array() || e.empty()) fail(join(path, "enum"), "'enum' must be a non-empty array");
      std::string body;
      for (const auto& v : e) body += (body.empty() ? "" : " | ") + literal(v.dump(-1, ' ', false, json::error_handler_t::replace));
      return rule(hint + "-enum", body);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      const json& list = s[key];
      if (!list.is_array() || list.empty()) fail(join(path, key), std::string("'") + key + "' must be a non-empty array");
      // oneOf requires exactly one branch to hold: produced as anyOf, that is
      // only sure when no document can satisfy two branches.
      if (std::string(key) == "oneOf")
        for (size_t i = 0; i < list.size(); ++i)
          for (size_t j = i + 1; j < list.size(); ++j)
            if (!disjoint(list[i], list[j], join(path, key)))
              fail(join(path, key), "'oneOf' branches " + std::to_string(i) + " and " + std::to_string(j) +
                                        " may both hold for one value, which osprey cannot rule out; use 'anyOf', or "
                                        "tell them apart by type or by a required property with different 'const'/'enum' values");
      std::string body;
      for (size_t i = 0; i < list.size(); ++i)
        body += (body.empty() ? "" : " | ") + visit(list[i], join(path, key) + "[" + std::to_string(i) + "]", hint + "-" + std::to_string(i));
      return rule(hint + "-any", body);
    }
    if (s.contains("allOf")) return visit(merge_all_of(s, path), path, hint);

    std::vector<std::string> types;
    if (s.contains("type")) {
      const json& t = s["type"];
      if (t.is_string()) types.push_back(t);
      else if (t.is_array())
        for (const auto& x : t) {
          if (!x.is_string()) fail(join(path, "type"), "'type' must be a string or an array of strings");
          types.push_back(x);
        }
      else fail(join(path, "type"), "'type' must be a string or an array of strings");
    } else if (s.contains("properties") || s.contains("additionalProperties") || s.contains("required")) {
      types.push_back("object");
    } else if (s.contains("items") || s.contains("prefixItems")) {
      types.push_back("array");
    } else if (s.contains("pattern") || s.contains("minLength") || s.contains("maxLength") || s.contains("format")) {
      types.push_back("string");
    } else if (s.contains("minimum") || s.contains("maximum")) {
      types.push_back("number");
    } else {
      return "value";
    }
    if (s.contains("nullable") && s["nullable"].get<bool>()) types.push_back("null");
    std::string body;
    for (const std::string& t : types) body += (body.empty() ? "" : " | ") + typed(s, t, path, hint);
    return types.size() == 1 ? body : rule(hint, body);
  }

  // The schema behind any $ref chain.
  const json& deref(const json& s, const std::string& path) {
    const json* at = &s;
    for (int hops = 0; at->is_object() && at->contains("$ref") && (*at)["$ref"].is_string() && hops < 64; ++hops)
      at = &resolve((*at)["$ref"].get<std::string>(), path);
    return *at;
  }

  // The JSON types a schema allows, or empty when it does not say.
  static std::set<std::string> types_of(const json& s) {
    std::set<std::string> out;
    if (!s.is_object()) return out;
    if (s.contains("type")) {
      if (s["type"].is_string()) out.insert(s["type"].get<std::string>());
      else if (s["type"].is_array())
        for (const auto& t : s["type"])
          if (t.is_string()) out.insert(t.get<std::string>());
      if (out.count("number")) out.insert("integer");
    } else if (s.contains("const") || s.contains("enum")) {
      for (const auto& v : s.contains("const") ? json::array({s["const"]}) : s["enum"]) {
        if (v.is_string()) out.insert("string");
        else if (v.is_boolean()) out.insert("boolean");
        else if (v.is_null()) out.insert("null");
        else if (v.is_number()) out.insert("number"), out.insert("integer");
        else if (v.is_array()) out.insert("array");
        else out.insert("object");
      }
    } else if (s.contains("properties")) {
      out.insert("object");
    }
    return out;
  }

  // The values a schema allows when it lists them (const or enum).
  static std::optional<std::vector<json>> values_of(const json& s) {
    if (!s.is_object()) return std::nullopt;
    if (s.contains("const")) return std::vector<json>{s["const"]};
    if (s.contains("enum") && s["enum"].is_array()) return std::vector<json>(s["enum"].begin(), s["enum"].end());
    return std::nullopt;
  }

  // Whether no value can satisfy both schemas, as far as simple checks tell.
  bool disjoint(const json& a_in, const json& b_in, const std::string& path) {
    const json& a = deref(a_in, path);
    const json& b = deref(b_in, path);
    const auto ta = types_of(a), tb = types_of(b);
    if (!ta.empty() && !tb.empty()) {
      bool common = false;
      for (const auto& t : ta) common |= tb.count(t) > 0;
      if (!common) return true;
    }
    const auto va = values_of(a), vb = values_of(b);
    if (va && vb) {
      for (const auto& x : *va)
        for (const auto& y : *vb)
          if (x == y) return false;
      return true;
    }
    // Objects told apart by a property both require, with different listed values.
    if (a.is_object() && b.is_object() && a.contains("properties") && b.contains("properties") && a.contains("required") &&
        b.contains("required") && a["properties"].is_object() && b["properties"].is_object() && a["required"].is_array() &&
        b["required"].is_array()) {
      for (const auto& name : a["required"]) {
        if (!name.is_string()) continue;
        const std::string n = name;
        bool in_b = false;
        for (const auto& m : b["required"]) in_b |= m == name;
        if (!in_b || !a["properties"].contains(n) || !b["properties"].contains(n)) continue;
        const auto pa = values_of(deref(a["properties"][n], path)), pb = values_of(deref(b["properties"][n], path));
        if (!pa || !pb) continue;
        bool overlap = false;
        for (const auto& x : *pa)
          for (const auto& y : *pb) overlap |= x == y;
        if (!overlap) return true;
      }
    }
    return false;
  }

  json merge_all_of(const json& s, const std::string& path) {
    const json& list = s["allOf"];
    if (!list.is_array() || list.empty()) fail(join(path, "allOf"), "'allOf' must be a non-empty array");
    json merged = s;
    merged.erase("allOf");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string p = join(path, "allOf") + "[" + std::to_string(i) + "]";
      const json* part = &list[i];
      for (int hops = 0; part->is_object() && part->contains("$ref"); ++hops) {
        if (!(*part)["$ref"].is_string() || hops > 64) fail(join(p, "$ref"), "'$ref' must be a string naming a schema");
        part = &resolve((*part)["$ref"].get<std::string>(), p);
      }
      if (!part->is_object()) fail(p, "'allOf' entries must be schemas");
      for (auto it = part->begin(); it != part->end(); ++it) {
        const std::string& k = it.key();
        if (k == "properties") {
          if (!merged.contains("properties")) merged["properties"] = json::object();
          for (auto p2 = it->begin(); p2 != it->end(); ++p2) merged["properties"][p2.key()] = p2.value();
        } else if (k == "required") {
          if (!merged.contains("required")) merged["required"] = json::array();
          for (const auto& r : *it) merged["required"].push_back(r);
        } else if (k == "type" || k == "additionalProperties" || k == "title" || k == "description" || k == "$defs" ||
                   k == "definitions") {
          if (k == "type" && merged.contains("type") && merged["type"] != *it)
            fail(join(p, "type"), "'allOf' entries of different types can never all hold");
          merged[k] = *it;
        } else {
          fail(join(p, k), "'allOf' merges object schemas (properties, required, type); '" + k + "' is not supported there");
        }
      }
    }
    return merged;
  }

  std::string typed(const json& s, const std::string& t, const std::string& path, const std::string& hint) {
    if (t == "string") return string_rule(s, path, hint);
    if (t == "integer" || t == "number") return number_rule(s, t == "integer", path, hint);
    if (t == "boolean") return "boolean";
    if (t == "null") return "null";
    if (t == "object") return object_rule(s, path, hint);
    if (t == "array") return array_rule(s, path, hint);
    fail(join(path, "type"), "unknown type '" + t + "'");
  }

  std::string string_rule(const json& s, const std::string& path, const std::string& hint) {
    const bool lengths = s.contains("minLength") || s.contains("maxLength");
    if (s.contains("format")) {
      if (!s["format"].is_string()) fail(join(path, "format"), "'format' must be a string");
      if (lengths || s.contains("pattern")) fail(join(path, "format"), "'format' together with a length or pattern is not supported");
      const std::string f = s["format"];
      const std::string date = R"([0-9]{4} "-" ( ( "0" [13578] | "1" [02] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) | ( "0" [469] | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) | "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ) ))";
      const std::string time = R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))";
      if (f == "date") return rule("date", "\"\\\"\" " + date + " \"\\\"\"");
      if (f == "time") return rule("time", "\"\\\"\" " + time + " \"\\\"\"");
      if (f == "date-time") return rule("date-time", "\"\\\"\" " + date + " \"T\" " + time + " \"\\\"\"");
      if (f == "uuid")
        return rule("uuid", R"("\"" [0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12} "\"")");
      fail(join(path, "format"), "the string format '" + f + "' is not supported (date, time, date-time, uuid are)");
    }
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) fail(join(path, "pattern"), "'pattern' must be a string");
      if (lengths) fail(join(path, "pattern"), "'pattern' together with minLength/maxLength is not supported");
      return rule(hint + "-pattern", RegexCompiler(s["pattern"].get<std::string>(), join(path, "pattern")).compile());
    }
    if (lengths) {
      const int64_t lo = s.contains("minLength") ? count(s, "minLength", path) : 0;
      const int64_t hi = s.contains("maxLength") ? count(s, "maxLength", path) : -1;
      if (hi >= 0 && hi < lo) fail(join(path, "maxLength"), "'maxLength' is below 'minLength'");
      if (lo > 10000 || hi > 10000) fail(join(path, hi > 10000 ? "maxLength" : "minLength"), "string lengths above 10000 are not supported");
      return rule(hint + "-string", "\"\\\"\" char{" + std::to_string(lo) + "," + (hi >= 0 ? std::to_string(hi) : "") + "} \"\\\"\"");
    }
    return "string";
  }

  // An integral bound of a number, or an error naming it.
  static std::optional<int64_t> bound(const json& s, const char* key, bool integer, const std::string& path) {
    if (!s.contains(key)) return std::nullopt;
    const json& v = s[key];
    if (!v.is_number()) fail(join(path, key), std::string("'") + key + "' must be a number");
    const double d = v.get<double>();
    if (std::fabs(d) > 1e15) fail(join(path, key), std::string("'") + key + "' beyond 1e15 is not supported");
    if (d != std::floor(d)) {
      if (!integer) fail(join(path, key), std::string("'") + key + "' on a number must be a whole number to be enforced; " + v.dump() + " is not");
      // An integer >= 2.5 is an integer >= 3.
      const bool lower = std::string(key).find("inimum") != std::string::npos;
      return static_cast<int64_t>(lower ? std::ceil(d) : std::floor(d));
    }
    return static_cast<int64_t>(d);
  }

  std::string number_rule(const json& s, bool integer, const std::string& path, const std::string& hint) {
    auto lo = bound(s, "minimum", integer, path);
    auto hi = bound(s, "maximum", integer, path);
    if (auto x = bound(s, "exclusiveMinimum", integer, path)) {
      if (!integer) fail(join(path, "exclusiveMinimum"), "'exclusiveMinimum' is supported on integers only");
      lo = std::max(lo.value_or(INT64_MIN), *x + (s["exclusiveMinimum"].get<double>() == static_cast<double>(*x) ? 1 : 0));
    }
    if (auto x = bound(s, "exclusiveMaximum", integer, path)) {
      if (!integer) fail(join(path, "exclusiveMaximum"), "'exclusiveMaximum' is supported on integers only");
      hi = std::min(hi.value_or(INT64_MAX), *x - (s["exclusiveMaximum"].get<double>() == static_cast<double>(*x) ? 1 : 0));
    }
    if (!lo && !hi) return integer ? "integer" : "number";
    if (lo && hi && *lo > *hi) fail(join(path, "maximum"), "'maximum' is below 'minimum'");
    std::vector<std::string> alts;
    // Non-negative part [max(lo,0), hi] and negative part [lo, min(hi,-1)] (as -[..]).
    const int64_t nlo = std::max<int64_t>(lo.value_or(INT64_MIN), 0);
    const bool has_hi = hi.has_value();
    const std::string frac = integer ? "" : " ( \".\" [0-9]{1,16} )?";
    const std::string zero_frac = integer ? "" : " ( \".\" \"0\"{1,16} )?";
    if (!has_hi || *hi >= 0) {
      if (integer) {
        alts.push_back(natural_range(nlo, has_hi ? *hi : -1));
      } else if (!has_hi) {
        alts.push_back(natural_range(nlo, -1) + frac);
      } else {
        // x in [nlo, hi]: an integer part below hi with any fraction, or hi itself.
        if (*hi > nlo) alts.push_back(natural_range(nlo, *hi - 1) + frac);
        alts.push_back(literal(std::to_string(*hi)) + zero_frac);
      }
    }
    if (!lo || *lo < 0) {
      // -y with y in [max(-hi,0) or 1, -lo]
      const int64_t ylo = has_hi && *hi < 0 ? -*hi : (integer ? 1 : 0);
      const int64_t yhi = lo ? -*lo : -1;
      if (integer) {
        if (yhi < 0 || ylo <= yhi) alts.push_back("\"-\" " + natural_range(ylo, yhi));
      } else if (yhi < 0) {
        alts.push_back("\"-\" " + natural_range(ylo, -1) + frac);
      } else {
        if (yhi > ylo) alts.push_back("\"-\" " + natural_range(ylo, yhi - 1) + frac);
        if (yhi >= ylo && yhi > 0) alts.push_back("\"-\" " + literal(std::to_string(yhi)) + zero_frac);
      }
    }
    std::string body;
    for (const auto& a : alts) body += (body.empty() ? "" : " | ") + a;
    return rule(hint + (integer ? "-int" : "-num"), body);
  }

  std::string object_rule(const json& s, const std::string& path, const std::string& hint) {
    std::vector<std::pair<std::string, std::string>> props;  // key, value rule
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) fail(join(path, "required"), "'required' must be an array of names");
      for (const auto& r : s["required"]) {
        if (!r.is_string()) fail(join(path, "required"), "'required' must be an array of names");
        required.insert(r.get<std::string>());
      }
    }
    if (s.contains("properties")) {
      const json& p = s["properties"];
      if (!p.is_object()) fail(join(path, "properties"), "'properties' must be an object");
      for (auto it = p.begin(); it != p.end(); ++it)
        props.emplace_back(it.key(), visit(it.value(), join(join(path, "properties"), it.key()), hint + "-" + it.key()));
    }
    // A required name that 'properties' does not describe may hold any value.
    for (const auto& r : s.contains("required") ? s["required"] : json::array()) {
      bool known = false;
      for (const auto& [k, v] : props) known |= k == r.get<std::string>();
      if (!known) props.emplace_back(r.get<std::string>(), "value");
    }
    // additionalProperties: extra keys are never produced beside listed
    // properties (which stays valid); a schema without properties and with a
    // value schema for extra keys is a map of such values.
    if (props.empty() && s.contains("additionalProperties") && !s["additionalProperties"].is_boolean()) {
      const std::string v = visit(s["additionalProperties"], join(path, "additionalProperties"), hint + "-value");
      return rule(hint + "-map", "\"{\" ws ( string ws \":\" ws " + v + " ( ws \",\" ws string ws \":\" ws " + v + " )* )? ws \"}\"");
    }
    if (props.empty()) return rule("empty-object", "\"{\" ws \"}\"");
    // Properties in order, optional ones skippable: after_k follows at least
    // one property (so it starts with a comma), first_k follows none.
    const size_t n = props.size();
    std::vector<std::string> after(n + 1), first(n + 1);
    after[n] = first[n] = "";
    for (size_t k = n; k-- > 0;) {
      const std::string kv = literal(json(props[k].first).dump()) + " ws \":\" ws " + props[k].second;
      const bool req = required.count(props[k].first) > 0;
      const std::string rest_after = after[k + 1].empty() ? "" : " " + after[k + 1];
      const std::string with = "ws \",\" ws " + kv + rest_after;
      after[k] = rule(hint + "-after-" + std::to_string(k), req ? with : with + " | \"\"" + rest_after);
      const std::string first_with = kv + rest_after;
      if (req) first[k] = rule(hint + "-first-" + std::to_string(k), first_with);
      else first[k] = rule(hint + "-first-" + std::to_string(k), first_with + (first[k + 1].empty() ? " | \"\"" : " | " + first[k + 1]));
    }
    return rule(hint, "\"{\" ws " + first[0] + " ws \"}\"");
  }

  std::string array_rule(const json& s, const std::string& path, const std::string& hint) {
    int64_t lo = s.contains("minItems") ? count(s, "minItems", path) : 0;
    int64_t hi = s.contains("maxItems") ? count(s, "maxItems", path) : -1;
    if (hi >= 0 && hi < lo) fail(join(path, "maxItems"), "'maxItems' is below 'minItems'");
    std::vector<std::string> prefix;
    if (s.contains("prefixItems")) {
      const json& p = s["prefixItems"];
      if (!p.is_array()) fail(join(path, "prefixItems"), "'prefixItems' must be an array of schemas");
      for (size_t i = 0; i < p.size(); ++i)
        prefix.push_back(visit(p[i], join(path, "prefixItems") + "[" + std::to_string(i) + "]", hint + "-" + std::to_string(i)));
    }
    std::string item = "value";
    bool more = true;
    if (s.contains("items")) {
      if (s["items"].is_boolean() && !s["items"].get<bool>()) more = false;
      else item = visit(s["items"], join(path, "items"), hint + "-item");
    }
    if (!prefix.empty()) {
      // The tuple, whole (a shorter prefix would need minItems below its length).
      if (lo > static_cast<int64_t>(prefix.size()) && !more) fail(join(path, "minItems"), "'minItems' exceeds the tuple with no further items");
      std::string body = "\"[\" ws ";
      for (size_t i = 0; i < prefix.size(); ++i) body += (i ? " ws \",\" ws " : "") + prefix[i];
      const int64_t extra_lo = std::max<int64_t>(0, lo - static_cast<int64_t>(prefix.size()));
      const int64_t extra_hi = hi < 0 ? -1 : std::max<int64_t>(0, hi - static_cast<int64_t>(prefix.size()));
      if (more && extra_hi != 0)
        body += " ( ws \",\" ws " + item + " ){" + std::to_string(extra_lo) + "," + (extra_hi >= 0 ? std::to_string(extra_hi) : "") + "}";
      return rule(hint + "-tuple", body + " ws \"]\"");
    }
    if (!more) return rule("empty-array", "\"[\" ws \"]\"");
    if (lo > 10000 || hi > 10000) fail(join(path, "maxItems"), "item counts above 10000 are not supported");
    const std::string rest = " ( ws \",\" ws " + item + " ){" + std::to_string(std::max<int64_t>(0, lo - 1)) + "," +
                             (hi >= 0 ? std::to_string(std::max<int64_t>(0, hi - 1)) : "") + "}";
    const std::string items = item + (hi == 1 ? "" : rest);
    if (hi == 0) return rule("empty-array", "\"[\" ws \"]\"");
    return rule(hint + "-array", "\"[\" ws " + (lo > 0 ? items : "( " + items + " )?") + " ws \"]\"");
  }

  const json& root_;
  std::map<std::string, std::string> rules_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> by_body_;
  std::map<std::string, std::string> refs_;
  int depth_ = 0;
};

}  // namespace

Expected<std::string> json_schema_to_gbnf(const json& schema, std::string* where) {
  try {
    return Compiler(schema).compile();
  } catch (const SchemaError& e) {
    if (where != nullptr) *where = e.path;
    return InvalidArgument(e.path.empty() ? e.message : e.message + " (at " + e.path + ")");
  } catch (const json::exception& e) {
    // A value of an unexpected type somewhere the checks above missed.
    return InvalidArgument(std::string("the schema could not be read: ") + e.what());
  }
}

std::string json_object_gbnf() { return std::string("root ::= ws object\n") + kPrimitives; }

std::string with_optional_block(const std::string& gbnf, const std::string& open, const std::string& close) {
  // Text without `close`, as a right-linear grammar of the matching
  // automaton: block-k has matched the first k bytes of `close`.
  const size_t n = close.size();
  auto state_after = [&](size_t k, char c) {
    // The longest prefix of `close` that ends the matched text plus c.
    std::string seen = close.substr(0, k) + c;
    for (size_t len = std::min(seen.size(), n); len > 0; --len)
      if (seen.compare(seen.size() - len, len, close, 0, len) == 0) return len;
    return size_t{0};
  };
  auto class_char = [](char c) {
    std::string out;
    if (c == ']' || c == '\\' || c == '^' || c == '-') out += '\\';
    return out + c;
  };
  std::string rules;
  for (size_t k = 0; k < n; ++k) {
    std::string body = "\"\"";
    std::string excluded;
    std::set<char> special;
    for (size_t j = 0; j < n; ++j) special.insert(close[j]);
    for (char c : special) {
      const size_t next = state_after(k, c);
      if (next == n) {
        excluded += class_char(c);  // would complete `close`
        continue;
      }
      if (next == 0) continue;  // the same as any other character
      excluded += class_char(c);
      body += " | " + literal(std::string(1, c)) + " block-" + std::to_string(next);
    }
    body += " | [^" + excluded + "] block-0";
    rules += "block-" + std::to_string(k) + " ::= " + body + "\n";
  }
  // The original start rule becomes the answer's.
  std::string rest = gbnf;
  const size_t at = rest.find("root ::=");
  if (at != std::string::npos) rest.replace(at, 8, "answer ::=");
  return "root ::= ( ws " + literal(open) + " block-0 " + literal(close) + " ws )? answer\n" + rules + rest;
}

}  // namespace osprey::grammar
