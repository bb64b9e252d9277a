#include "grammar/grammar.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <queue>

namespace osprey::grammar {
namespace {

constexpr uint32_t kInf = 0x3fffffff;
constexpr uint32_t kMaxCodepoint = 0x10FFFF;
// A request's grammar is hostile input. Parentheses nest by recursion, so
// their depth is capped well inside a thread's stack; and repetitions copy
// what they repeat, so the items a grammar expands to are counted and capped
// (a few hundred bytes of "x"{10000} repeated would otherwise ask for
// gigabytes). Real grammars, JSON Schemas' included, stay far below both.
constexpr int kMaxNesting = 1000;
constexpr size_t kMaxItems = size_t{1} << 20;
// Rule names are request text too: no more of one than this is kept in the
// names of the rules made inside it, or quoted in a message.
constexpr size_t kNameBytes = 64;

// A rule's name as error messages show it: without the '#n' of rules made
// for groups and repetitions, and cut short, since a hostile grammar's names
// can be megabytes. Names are ASCII (letters, digits, '_' and '-').
std::string shown(const std::string& name) {
  std::string s = name.substr(0, name.find('#'));
  return s.size() > kNameBytes ? s.substr(0, kNameBytes) + "..." : s;
}

// One item of a sequence while parsing: a byte set or a rule.
struct Item {
  bool is_rule = false;
  ByteSet bytes;
  uint32_t rule = 0;
};
using Sequence = std::vector<Item>;

class Builder {
 public:
  uint32_t rule_id(const std::string& name) {
    auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    const uint32_t id = static_cast<uint32_t>(rules_.size());
    ids_[name] = id;
    rules_.emplace_back();
    names_.push_back(name);
    defined_.push_back(false);
    return id;
  }
  uint32_t new_rule(const std::string& hint) { return rule_id(hint + "#" + std::to_string(rules_.size())); }
  void define(uint32_t id, std::vector<Sequence> alts) {
    rules_[id] = std::move(alts);
    defined_[id] = true;
  }
  Item rule_item(uint32_t id) {
    Item i;
    i.is_rule = true;
    i.rule = id;
    return i;
  }
  // A whole sequence as one item (a rule unless it is a single item already).
  Item wrap(Sequence seq, const std::string& hint) {
    if (seq.size() == 1) return seq[0];
    const uint32_t id = new_rule(hint);
    define(id, {std::move(seq)});
    return rule_item(id);
  }
  // Counts n more items (or rules) against the grammar's budget.
  void spend(size_t n) {
    items_ += n;
    if (items_ > kMaxItems) over_budget_ = true;
  }
  bool over_budget() const { return over_budget_; }

  // x{min,max}; max < 0: unbounded.
  Sequence repeat(const Item& x, int min, int max, const std::string& hint) {
    spend(max < 0 ? 1 : static_cast<size_t>(max - min));  // the rules made here; the caller counts the items
    Sequence out(static_cast<size_t>(min), x);
    if (max < 0) {
      const uint32_t star = new_rule(hint + "*");
      define(star, {Sequence{x, rule_item(star)}, Sequence{}});
      out.push_back(rule_item(star));
    } else if (max > min) {
      // (x (x (x)?)?)? built from the inside out
      uint32_t inner = new_rule(hint + "?");
      define(inner, {Sequence{x}, Sequence{}});
      for (int k = 1; k < max - min; ++k) {
        const uint32_t outer = new_rule(hint + "?");
        define(outer, {Sequence{x, rule_item(inner)}, Sequence{}});
        inner = outer;
      }
      out.push_back(rule_item(inner));
    }
    return out;
  }

  std::vector<std::vector<Sequence>> rules_;
  std::vector<std::string> names_;
  std::vector<bool> defined_;
  std::map<std::string, uint32_t> ids_;

 private:
  size_t items_ = 0;
  bool over_budget_ = false;
};

void append_utf8(uint32_t cp, std::vector<uint8_t>& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<uint8_t>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<uint8_t>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<uint8_t>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<uint8_t>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3F)));
  }
}

// Splits the code points [lo, hi] into runs whose UTF-8 encodings differ only
// in the range of each byte, so each run is a sequence of byte sets.
void utf8_ranges(uint32_t lo, uint32_t hi, std::vector<Sequence>& out) {
  if (lo > hi) return;
  static const uint32_t kLimits[] = {0x7F, 0x7FF, 0xFFFF};
  for (uint32_t limit : kLimits) {
    if (lo <= limit && hi > limit) {
      utf8_ranges(lo, limit, out);
      utf8_ranges(limit + 1, hi, out);
      return;
    }
  }
  for (int i = 1; i < 4; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        utf8_ranges(lo, lo | m, out);
        utf8_ranges((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        utf8_ranges(lo, (hi & ~m) - 1, out);
        utf8_ranges(hi & ~m, hi, out);
        return;
      }
    }
  }
  std::vector<uint8_t> a, b;
  append_utf8(lo, a);
  append_utf8(hi, b);
  Sequence seq;
  for (size_t k = 0; k < a.size(); ++k) {
    Item item;
    for (int v = a[k]; v <= b[k]; ++v) item.bytes.set(static_cast<size_t>(v));
    seq.push_back(item);
  }
  out.push_back(std::move(seq));
}

class Parser {
 public:
  explicit Parser(const std::string& text) : s_(text) {}

  Expected<Builder> run() {
    try {
      skip();
      while (pos_ < s_.size()) parse_rule();
      if (b_.ids_.find("root") == b_.ids_.end()) throw error("the grammar has no 'root' rule");
      for (size_t r = 0; r < b_.rules_.size(); ++r)
        if (!b_.defined_[r]) throw error("rule '" + shown(b_.names_[r]) + "' is used but not defined");
      return std::move(b_);
    } catch (const Status& st) {
      return st;
    }
  }

 private:
  Status error(const std::string& what) const {
    const auto line = 1 + std::count(s_.begin(), s_.begin() + static_cast<std::ptrdiff_t>(std::min(pos_, s_.size())), '\n');
    return InvalidArgument("grammar line " + std::to_string(line) + ": " + what);
  }

  void skip() {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else {
        break;
      }
    }
  }
  static bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }
  std::string name() {
    const size_t start = pos_;
    while (pos_ < s_.size() && name_char(s_[pos_])) ++pos_;
    if (pos_ == start) throw error("expected a rule name");
    return s_.substr(start, pos_ - start);
  }
  // At "name ::=": the start of the next rule.
  bool at_rule_start() const {
    size_t p = pos_;
    while (p < s_.size() && name_char(s_[p])) ++p;
    if (p == pos_) return false;
    while (p < s_.size() && (s_[p] == ' ' || s_[p] == '\t' || s_[p] == '\n' || s_[p] == '\r')) ++p;
    return s_.compare(p, 3, "::=") == 0;
  }

  void parse_rule() {
    const std::string n = name();
    skip();
    if (s_.compare(pos_, 3, "::=") != 0) throw error("expected '::=' after '" + shown(n) + "'");
    pos_ += 3;
    const uint32_t id = b_.rule_id(n);
    if (b_.defined_[id]) throw error("rule '" + shown(n) + "' is defined twice");
    // The rule's name, cut to kNameBytes, names the rules made inside it: each
    // repetition copies it into every rule it makes, up to 10000 of them.
    b_.define(id, alternatives(n.substr(0, std::min(n.size(), kNameBytes)), /*nested=*/false));
  }

  std::vector<Sequence> alternatives(const std::string& hint, bool nested) {
    std::vector<Sequence> alts;
    alts.push_back(sequence(hint, nested));
    while (pos_ < s_.size() && s_[pos_] == '|') {
      ++pos_;
      alts.push_back(sequence(hint, nested));
    }
    return alts;
  }

  Sequence sequence(const std::string& hint, bool nested) {
    Sequence seq;
    for (;;) {
      skip();
      if (pos_ >= s_.size() || s_[pos_] == '|' || s_[pos_] == ')') break;
      if (!nested && at_rule_start()) break;
      const size_t start = seq.size();
      primary(seq, hint);
      skip();
      postfix(seq, start, hint);
      b_.spend(seq.size() - start);
      if (b_.over_budget())
        throw error("the grammar expands to more than " + std::to_string(kMaxItems) +
                    " items (each copy a repetition makes counts)");
    }
    if (nested && pos_ >= s_.size()) throw error("a '(' is not closed");
    return seq;
  }

  void postfix(Sequence& seq, size_t start, const std::string& hint) {
    if (pos_ >= s_.size()) return;
    const char c = s_[pos_];
    int min = 0, max = 0;
    if (c == '*') {
      min = 0, max = -1, ++pos_;
    } else if (c == '+') {
      min = 1, max = -1, ++pos_;
    } else if (c == '?') {
      min = 0, max = 1, ++pos_;
    } else if (c == '{') {
      ++pos_;
      min = number();
      max = min;
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        skip();
        max = (pos_ < s_.size() && s_[pos_] == '}') ? -1 : number();
      }
      skip();
      if (pos_ >= s_.size() || s_[pos_] != '}') throw error("expected '}' to close a repetition");
      ++pos_;
      if (max >= 0 && max < min) throw error("a repetition's maximum is below its minimum");
      if (max > 10000 || min > 10000) throw error("a repetition count above 10000");
    } else {
      return;
    }
    Sequence last(seq.begin() + static_cast<std::ptrdiff_t>(start), seq.end());
    seq.resize(start);
    const Item x = b_.wrap(std::move(last), hint);
    Sequence rep = b_.repeat(x, min, max, hint);
    seq.insert(seq.end(), rep.begin(), rep.end());
  }

  int number() {
    skip();
    const size_t start = pos_;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    if (pos_ == start || pos_ - start > 6) throw error("expected a repetition count");
    return std::stoi(s_.substr(start, pos_ - start));
  }

  uint32_t hex(int digits) {
    if (pos_ + static_cast<size_t>(digits) > s_.size()) throw error("a \\x or \\u escape is cut short");
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else throw error("a bad hex digit in an escape");
    }
    return v;
  }

  // One code point of a literal or class, escapes decoded.
  uint32_t codepoint() {
    if (pos_ >= s_.size()) throw error("unexpected end of the grammar");
    const unsigned char c = static_cast<unsigned char>(s_[pos_]);
    if (c == '\\') {
      if (++pos_ >= s_.size()) throw error("an escape at the end of the grammar");
      const char e = s_[pos_++];
      switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '0': return 0;
        case 'x': return hex(2);
        case 'u': return hex(4);
        case 'U': return hex(8);
        default: return static_cast<unsigned char>(e);
      }
    }
    // Decode UTF-8 in the grammar text itself.
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || pos_ + static_cast<size_t>(len) > s_.size()) throw error("the grammar text is not valid UTF-8");
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int i = 1; i < len; ++i) cp = (cp << 6) | (static_cast<unsigned char>(s_[pos_ + static_cast<size_t>(i)]) & 0x3F);
    pos_ += static_cast<size_t>(len);
    return cp;
  }

  // A set of code points as items: one byte set for ASCII, a rule otherwise.
  Item code_points(std::vector<std::pair<uint32_t, uint32_t>> ranges, bool negated, const std::string& hint) {
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<uint32_t, uint32_t>> set;
    if (negated) {
      uint32_t next = 0;
      for (auto [lo, hi] : ranges) {
        if (lo > next) set.emplace_back(next, lo - 1);
        next = std::max(next, hi + 1);
      }
      if (next <= kMaxCodepoint) set.emplace_back(next, kMaxCodepoint);
    } else {
      set = ranges;
    }
    std::vector<Sequence> alts;
    Item single;  // all one-byte sequences merged
    bool any_single = false;
    for (auto [lo, hi] : set) {
      // Surrogates are not characters and have no UTF-8 form.
      std::vector<std::pair<uint32_t, uint32_t>> parts;
      if (lo < 0xD800 && hi > 0xDFFF) parts = {{lo, 0xD7FF}, {0xE000, hi}};
      else if (lo >= 0xD800 && hi <= 0xDFFF) continue;
      else if (lo >= 0xD800 && lo <= 0xDFFF) parts = {{0xE000, hi}};
      else if (hi >= 0xD800 && hi <= 0xDFFF) parts = {{lo, 0xD7FF}};
      else parts = {{lo, hi}};
      for (auto [a, b] : parts) {
        std::vector<Sequence> runs;
        utf8_ranges(a, std::min(b, kMaxCodepoint), runs);
        for (auto& r : runs) {
          if (r.size() == 1) {
            single.bytes |= r[0].bytes;
            any_single = true;
          } else {
            alts.push_back(std::move(r));
          }
        }
      }
    }
    if (any_single) alts.insert(alts.begin(), Sequence{single});
    if (alts.empty()) throw error("a character class that matches nothing");
    if (alts.size() == 1 && alts[0].size() == 1) return alts[0][0];
    const uint32_t id = b_.new_rule(hint + "-char");
    b_.define(id, std::move(alts));
    return b_.rule_item(id);
  }

  void primary(Sequence& seq, const std::string& hint) {
    const char c = s_[pos_];
    if (c == '"') {
      ++pos_;
      while (pos_ < s_.size() && s_[pos_] != '"') {
        std::vector<uint8_t> bytes;
        append_utf8(codepoint(), bytes);
        for (uint8_t byte : bytes) {
          Item i;
          i.bytes.set(byte);
          seq.push_back(i);
        }
      }
      if (pos_ >= s_.size()) throw error("a string literal is not closed");
      ++pos_;
    } else if (c == '[') {
      ++pos_;
      bool negated = false;
      if (pos_ < s_.size() && s_[pos_] == '^') negated = true, ++pos_;
      std::vector<std::pair<uint32_t, uint32_t>> ranges;
      while (pos_ < s_.size() && s_[pos_] != ']') {
        const uint32_t lo = codepoint();
        uint32_t hi = lo;
        if (pos_ + 1 < s_.size() && s_[pos_] == '-' && s_[pos_ + 1] != ']') {
          ++pos_;
          hi = codepoint();
          if (hi < lo) throw error("a character range runs backwards");
        }
        ranges.emplace_back(lo, hi);
      }
      if (pos_ >= s_.size()) throw error("a character class is not closed");
      ++pos_;
      seq.push_back(code_points(std::move(ranges), negated, hint));
    } else if (c == '.') {
      ++pos_;
      seq.push_back(code_points({}, /*negated=*/true, hint));
    } else if (c == '(') {
      if (++depth_ > kMaxNesting) throw error("parentheses nest deeper than " + std::to_string(kMaxNesting));
      ++pos_;
      auto alts = alternatives(hint, /*nested=*/true);
      if (pos_ >= s_.size() || s_[pos_] != ')') throw error("a '(' is not closed");
      ++pos_;
      --depth_;
      if (alts.size() == 1) {
        seq.push_back(b_.wrap(std::move(alts[0]), hint));
      } else {
        const uint32_t id = b_.new_rule(hint);
        b_.define(id, std::move(alts));
        seq.push_back(b_.rule_item(id));
      }
    } else if (name_char(c)) {
      seq.push_back(b_.rule_item(b_.rule_id(name())));
    } else {
      throw error(std::string("unexpected '") + c + "'");
    }
  }

  const std::string& s_;
  size_t pos_ = 0;
  int depth_ = 0;  // of open parentheses
  Builder b_;
};

}  // namespace

Expected<Grammar> Grammar::parse(const std::string& gbnf) {
  OSPREY_ASSIGN_OR_RETURN(Builder b, Parser(gbnf).run());
  const size_t n = b.rules_.size();

  // Every analysis below is a worklist or an explicit stack, linear in the
  // grammar's size: a hostile grammar (a chain of 200k rules) must neither
  // take quadratic time nor recurse off the end of the stack.

  // Nullable rules: an alternative is nullable once all its items are
  // nullable rules. Each alternative counts the items still unproven.
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> used_in(n);  // rule -> (rule, alternative) using it
  std::vector<std::vector<uint32_t>> pending(n);
  std::vector<bool> nullable(n, false);
  std::vector<uint32_t> work;
  for (uint32_t r = 0; r < n; ++r) {
    pending[r].resize(b.rules_[r].size());
    for (uint32_t a = 0; a < b.rules_[r].size(); ++a) {
      const Sequence& alt = b.rules_[r][a];
      const bool has_bytes = std::any_of(alt.begin(), alt.end(), [](const Item& i) { return !i.is_rule; });
      if (has_bytes) {
        pending[r][a] = UINT32_MAX;  // never nullable
        continue;
      }
      pending[r][a] = static_cast<uint32_t>(alt.size());
      for (const Item& i : alt) used_in[i.rule].emplace_back(r, a);
      if (alt.empty() && !nullable[r]) nullable[r] = true, work.push_back(r);
    }
  }
  while (!work.empty()) {
    const uint32_t s = work.back();
    work.pop_back();
    for (auto [r, a] : used_in[s])
      if (--pending[r][a] == 0 && !nullable[r]) nullable[r] = true, work.push_back(r);
  }

  // Left recursion: a rule reachable from itself through nullable prefixes,
  // found by a depth-first search with its own stack.
  std::vector<std::vector<uint32_t>> leads(n);
  for (size_t r = 0; r < n; ++r)
    for (const Sequence& alt : b.rules_[r])
      for (const Item& i : alt) {
        if (!i.is_rule) break;
        leads[r].push_back(i.rule);
        if (!nullable[i.rule]) break;
      }
  std::vector<uint8_t> mark(n, 0);  // 0 new, 1 on the path, 2 done
  std::optional<uint32_t> cycle;
  std::vector<std::pair<uint32_t, size_t>> path;  // (rule, its next lead to follow)
  for (uint32_t start = 0; start < n && !cycle; ++start) {
    if (mark[start] != 0) continue;
    mark[start] = 1;
    path.emplace_back(start, 0);
    while (!path.empty() && !cycle) {
      auto& [r, next] = path.back();
      if (next == leads[r].size()) {
        mark[r] = 2;
        path.pop_back();
        continue;
      }
      const uint32_t s = leads[r][next++];
      if (mark[s] == 1) cycle = s;
      else if (mark[s] == 0) mark[s] = 1, path.emplace_back(s, 0);
    }
  }
  if (cycle) {
    return InvalidArgument("grammar rule '" + shown(b.names_[*cycle]) + "' is left-recursive, which is not supported; rewrite it with repetition");
  }

  Grammar g;
  g.rule_names = b.names_;
  g.root = b.ids_.at("root");
  g.alternatives.resize(n);
  std::map<std::string, uint32_t> set_ids;
  for (size_t r = 0; r < n; ++r) {
    for (const Sequence& alt : b.rules_[r]) {
      g.alternatives[r].push_back(static_cast<uint32_t>(g.elements.size()));
      for (const Item& i : alt) {
        if (i.is_rule) {
          g.elements.push_back({Element::kRule, i.rule});
        } else {
          const std::string key = i.bytes.to_string();
          auto [it, fresh] = set_ids.emplace(key, static_cast<uint32_t>(g.sets.size()));
          if (fresh) g.sets.push_back(i.bytes);
          g.elements.push_back({Element::kBytes, it->second});
        }
      }
      g.elements.push_back({Element::kEnd, 0});
    }
  }
  // Fewest bytes per rule, by Knuth's generalisation of Dijkstra's shortest
  // paths: rules are settled in increasing order of their length; an
  // alternative's length is known once all the rules it uses are settled.
  std::vector<uint32_t> min_len(n, kInf);
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> uses(n);  // rule -> (rule, alternative start)
  std::vector<uint32_t> unsettled(g.elements.size(), 0);  // per alternative start: rules it still waits for
  std::vector<uint64_t> partial(g.elements.size(), 0);    // per alternative start: bytes so far
  using Candidate = std::pair<uint64_t, uint32_t>;  // (length, rule)
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> ready;
  for (uint32_t r = 0; r < n; ++r)
    for (uint32_t start : g.alternatives[r]) {
      uint32_t waits = 0;
      uint64_t bytes = 0;
      for (uint32_t p = start; g.elements[p].kind != Element::kEnd; ++p) {
        if (g.elements[p].kind == Element::kBytes) ++bytes;
        else ++waits, uses[g.elements[p].arg].emplace_back(r, start);
      }
      if (waits == 0) ready.emplace(bytes, r);
      else unsettled[start] = waits, partial[start] = bytes;
    }
  std::vector<bool> settled(n, false);
  while (!ready.empty()) {
    const auto [len, r] = ready.top();
    ready.pop();
    if (settled[r]) continue;
    settled[r] = true;
    min_len[r] = static_cast<uint32_t>(std::min<uint64_t>(len, kInf));
    for (auto [owner, start] : uses[r]) {
      partial[start] += min_len[r];
      if (--unsettled[start] == 0 && !settled[owner]) ready.emplace(partial[start], owner);
    }
  }
  for (size_t r = 0; r < n; ++r)
    if (min_len[r] >= kInf) {
      return InvalidArgument("grammar rule '" + shown(b.names_[r]) + "' can never finish (it only recurses)");
    }
  // Per element, the fewest bytes to the end of its alternative, from each end backwards.
  g.rest_min.assign(g.elements.size(), 0);
  for (size_t p = g.elements.size(); p-- > 0;) {
    const Element& e = g.elements[p];
    if (e.kind == Element::kEnd) continue;
    const uint64_t here = e.kind == Element::kBytes ? 1 : min_len[e.arg];
    g.rest_min[p] = static_cast<uint32_t>(std::min<uint64_t>(kInf, here + g.rest_min[p + 1]));
  }
  return g;
}

}  // namespace osprey::grammar
