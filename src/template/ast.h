// Syntax tree of a parsed template. Nodes are plain structs with a kind tag;
// the interpreter switches on it.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "template/value.h"

namespace osprey::tmpl {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,    // literal
    kName,       // name
    kAttribute,  // a.name
    kIndex,      // a[b]
    kSlice,      // a[b:c:d], parts may be null
    kCall,       // a(args, kwargs)
    kFilter,     // a | name(args, kwargs)
    kTest,       // a is [not] name(args)
    kUnary,      // op a  ("not", "-", "+")
    kBinary,     // a op b
    kTernary,    // b if a else c
    kList,       // [args]
    kTuple,      // (args)
    kDict,       // {kwargs-as-pairs of exprs}: args holds keys and values interleaved
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;  // variable, attribute, filter, test or operator
  bool negated = false;
  ExprPtr a, b, c;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // branches + else_body
    kFor,       // for targets in expr [if cond]
    kSet,       // set target(s) = expr, or a block set when expr is null
    kMacro,     // macro name(params)
    kFilterBlock,  // {% filter name %}body{% endfilter %}
    kBreak,
    kContinue,
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;                    // output, for iterable, set value, filter call
  ExprPtr condition;               // for ... if condition
  std::vector<ExprPtr> targets;    // set/for targets (names or attributes)
  std::vector<std::pair<ExprPtr, Body>> branches;  // if/elif
  Body body;
  Body else_body;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro parameters with defaults
};

struct Program {
  Body body;
};

}  // namespace osprey::tmpl
