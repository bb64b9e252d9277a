#include "template/lexer.h"

#include <cctype>
#include <charconv>
#include <cstring>

#include "core/utf8.h"
#include "template/value.h"

namespace osprey::tmpl {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(source) {
    // A template's final newline is not part of its output.
    if (!src_.empty() && src_.back() == '\n') src_.remove_suffix(1);
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      size_t open = find_tag(pos_);
      emit_text(pos_, open);
      if (open == std::string_view::npos) break;
      pos_ = open;
      lex_tag();
    }
    tokens_.push_back(Token{Token::Type::kEnd, "", 0, 0, line_});
    return std::move(tokens_);
  }

 private:
  // Position of the next `{{`, `{%` or `{#` at or after `from`.
  size_t find_tag(size_t from) const {
    for (size_t p = src_.find('{', from); p != std::string_view::npos; p = src_.find('{', p + 1)) {
      if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) return p;
    }
    return std::string_view::npos;
  }

  void emit_text(size_t begin, size_t end) {
    std::string text(src_.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    for (char c : text) line_ += c == '\n';
    if (strip_next_text_) {
      size_t k = 0;
      while (k < text.size() && is_space(text[k])) ++k;
      text.erase(0, k);
      strip_next_text_ = false;
    }
    if (end != std::string_view::npos) {
      const char kind = src_[end + 1];
      const bool minus = end + 2 < src_.size() && src_[end + 2] == '-';
      if (minus) {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (kind == '%' || kind == '#') {
        // lstrip_blocks: spaces and tabs between a line start and a block tag go.
        size_t k = text.size();
        while (k > 0 && (text[k - 1] == ' ' || text[k - 1] == '\t')) --k;
        const bool at_line_start = k > 0 ? text[k - 1] == '\n' : (begin == 0 || src_[begin - 1] == '\n');
        if (at_line_start) text.erase(k);
      }
    }
    if (!text.empty()) tokens_.push_back(Token{Token::Type::kText, std::move(text), 0, 0, line_});
  }

  [[noreturn]] void fail(const std::string& message) const { throw TemplateError(message, line_); }

  void lex_tag() {
    const char kind = src_[pos_ + 1];
    pos_ += 2;
    if (pos_ < src_.size() && src_[pos_] == '-') ++pos_;
    if (kind == '#') {
      size_t close = src_.find("#}", pos_);
      if (close == std::string_view::npos) fail("unterminated comment {# ... #}");
      for (size_t k = pos_; k < close; ++k) line_ += src_[k] == '\n';
      const bool minus = close > pos_ && src_[close - 1] == '-';
      pos_ = close + 2;
      after_close(minus, /*block=*/true);
      return;
    }
    const bool is_expr = kind == '{';
    tokens_.push_back(Token{is_expr ? Token::Type::kExprOpen : Token::Type::kStmtOpen, "", 0, 0, line_});
    int depth = 0;
    for (;;) {
      while (pos_ < src_.size() && is_space(src_[pos_])) line_ += src_[pos_++] == '\n';
      if (pos_ >= src_.size()) fail(is_expr ? "unterminated {{ ... }}" : "unterminated {% ... %}");
      const char close_char = is_expr ? '}' : '%';
      const bool minus = src_[pos_] == '-';
      const size_t c = pos_ + (minus ? 1 : 0);
      if (depth == 0 && c + 1 < src_.size() && src_[c] == close_char && src_[c + 1] == '}') {
        pos_ = c + 2;
        tokens_.push_back(Token{is_expr ? Token::Type::kExprClose : Token::Type::kStmtClose, "", 0, 0, line_});
        after_close(minus, !is_expr);
        return;
      }
      lex_token(depth);
    }
  }

  void after_close(bool minus, bool block) {
    if (minus) {
      strip_next_text_ = true;
    } else if (block && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;  // trim_blocks
      ++line_;
    }
  }

  void lex_token(int& depth) {
    const char c = src_[pos_];
    if (is_name_start(c)) {
      size_t start = pos_;
      while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
      tokens_.push_back(Token{Token::Type::kName, std::string(src_.substr(start, pos_ - start)), 0, 0, line_});
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      lex_number();
      return;
    }
    if (c == '\'' || c == '"') {
      lex_string(c);
      return;
    }
    static const char* kTwoChar[] = {"**", "//", "==", "!=", "<=", ">="};
    for (const char* op : kTwoChar) {
      if (src_.substr(pos_, 2) == op) {
        tokens_.push_back(Token{Token::Type::kOp, op, 0, 0, line_});
        pos_ += 2;
        return;
      }
    }
    if (std::strchr("+-*/%~<>=()[]{},.:|", c) != nullptr && c != '\0') {
      if (c == '{') ++depth;
      if (c == '}') --depth;
      tokens_.push_back(Token{Token::Type::kOp, std::string(1, c), 0, 0, line_});
      ++pos_;
      return;
    }
    fail("unexpected character '" + std::string(1, c) + "' in a tag");
  }

  void lex_number() {
    size_t start = pos_;
    bool is_float = false;
    while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      is_float = true;
      ++pos_;
      while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && std::isdigit(static_cast<unsigned char>(src_[p]))) {
        is_float = true;
        pos_ = p;
        while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
      }
    }
    std::string text;
    for (size_t k = start; k < pos_; ++k)
      if (src_[k] != '_') text += src_[k];
    Token token{is_float ? Token::Type::kFloat : Token::Type::kInt, text, 0, 0, line_};
    if (is_float) {
      token.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), token.int_value);
      if (ec != std::errc()) fail("integer literal " + text + " is out of range");
    }
    tokens_.push_back(std::move(token));
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  void lex_string(char quote) {
    const int start_line = line_;
    ++pos_;
    std::string out;
    for (;;) {
      if (pos_ >= src_.size()) throw TemplateError("unterminated string literal", start_line);
      char c = src_[pos_++];
      if (c == quote) break;
      if (c == '\n') ++line_;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) throw TemplateError("unterminated string literal", start_line);
      char e = src_[pos_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case 'x':
        case 'u': {
          const size_t n = e == 'x' ? 2 : 4;
          uint32_t code = 0;
          for (size_t k = 0; k < n; ++k) {
            int h = pos_ + k < src_.size() ? hex_value(src_[pos_ + k]) : -1;
            if (h < 0) fail(std::string("invalid \\") + e + " escape in a string literal");
            code = code * 16 + static_cast<uint32_t>(h);
          }
          pos_ += n;
          utf8::append(out, code);
          break;
        }
        default:
          // Python keeps unknown escapes as written.
          out += '\\';
          out += e;
      }
    }
    tokens_.push_back(Token{Token::Type::kString, std::move(out), 0, 0, start_line});
  }

  std::string_view src_;
  size_t pos_ = 0;
  int line_ = 1;
  bool strip_next_text_ = false;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> lex(std::string_view source) { return Lexer(source).run(); }

}  // namespace osprey::tmpl
