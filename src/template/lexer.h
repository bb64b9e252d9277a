// Splits a template into text and the tokens inside its tags.
//
// Whitespace handling matches what chat templates are written against
// (Hugging Face's renderers): trim_blocks and lstrip_blocks are on, one
// trailing newline of the template is dropped, and `{%-`/`-%}` (likewise for
// `{{`/`}}` and `{#`/`#}`) strip the whitespace beside the tag.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace osprey::tmpl {

struct Token {
  enum class Type { kText, kExprOpen, kExprClose, kStmtOpen, kStmtClose, kName, kInt, kFloat, kString, kOp, kEnd };
  Type type;
  std::string text;  // text, name, operator or decoded string literal
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
};

// Throws TemplateError naming the line on malformed input.
std::vector<Token> lex(std::string_view source);

}  // namespace osprey::tmpl
