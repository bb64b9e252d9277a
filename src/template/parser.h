// Builds the syntax tree from tokens. Unknown statements and malformed
// expressions throw TemplateError naming the construct and the line.
#pragma once

#include <vector>

#include "template/ast.h"
#include "template/lexer.h"

namespace osprey::tmpl {

Program parse(std::vector<Token> tokens);

}  // namespace osprey::tmpl
