#include "template/parser.h"

#include <initializer_list>
#include <string>

namespace osprey::tmpl {
namespace {

using T = Token::Type;

ExprPtr make_expr(Expr::Kind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Program run() {
    Program program;
    std::string stop;
    program.body = parse_body({}, stop);
    return program;
  }

 private:
  const Token& peek(size_t ahead = 0) const {
    size_t k = pos_ + ahead;
    return k < tokens_.size() ? tokens_[k] : tokens_.back();
  }
  const Token& next() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool at_op(const char* op) const { return peek().type == T::kOp && peek().text == op; }
  bool at_name(const char* name) const { return peek().type == T::kName && peek().text == name; }
  bool accept_op(const char* op) {
    if (!at_op(op)) return false;
    ++pos_;
    return true;
  }
  bool accept_name(const char* name) {
    if (!at_name(name)) return false;
    ++pos_;
    return true;
  }

  [[noreturn]] void fail(const std::string& message) const { throw TemplateError(message, peek().line); }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case T::kEnd: return "end of template";
      case T::kExprClose: return "'}}'";
      case T::kStmtClose: return "'%}'";
      case T::kText: return "text";
      case T::kString: return "string '" + t.text + "'";
      default: return "'" + t.text + "'";
    }
  }

  void expect_op(const char* op) {
    if (!accept_op(op)) fail(std::string("expected '") + op + "' but found " + describe(peek()));
  }
  void expect(T type, const char* what) {
    if (peek().type != type) fail(std::string("expected ") + what + " but found " + describe(peek()));
    ++pos_;
  }
  std::string expect_name() {
    if (peek().type != T::kName) fail("expected a name but found " + describe(peek()));
    return next().text;
  }

  // Parses statements until one of `stops` (a block keyword such as "endif")
  // opens a statement tag; leaves that keyword in `stop` and consumes it.
  Body parse_body(std::initializer_list<const char*> stops, std::string& stop) {
    Body body;
    for (;;) {
      const Token& t = peek();
      if (t.type == T::kEnd) {
        if (stops.size() == 0) return body;
        // The last stop is the one that closes the block.
        fail(std::string("missing {% ") + *(stops.end() - 1) + " %} before the end of the template");
      }
      if (t.type == T::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kText;
        s->line = t.line;
        s->text = t.text;
        body.push_back(std::move(s));
        ++pos_;
      } else if (t.type == T::kExprOpen) {
        ++pos_;
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->line = t.line;
        s->expr = parse_expression();
        expect(T::kExprClose, "'}}'");
        body.push_back(std::move(s));
      } else if (t.type == T::kStmtOpen) {
        if (peek(1).type == T::kName) {
          for (const char* s : stops) {
            if (peek(1).text == s) {
              stop = s;
              pos_ += 2;
              return body;
            }
          }
        }
        ++pos_;
        if (auto s = parse_statement()) body.push_back(std::move(s));
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  std::unique_ptr<Stmt> parse_statement() {
    DepthGuard guard(*this);
    const int line = peek().line;
    if (peek().type != T::kName) fail("expected a statement keyword but found " + describe(peek()));
    const std::string keyword = next().text;
    auto s = std::make_unique<Stmt>();
    s->line = line;
    std::string stop;
    if (keyword == "if") {
      s->kind = Stmt::Kind::kIf;
      ExprPtr cond = parse_expression();
      expect(T::kStmtClose, "'%}'");
      for (;;) {
        Body body = parse_body({"elif", "else", "endif"}, stop);
        s->branches.emplace_back(std::move(cond), std::move(body));
        if (stop == "elif") {
          cond = parse_expression();
          expect(T::kStmtClose, "'%}'");
          continue;
        }
        if (stop == "else") {
          expect(T::kStmtClose, "'%}'");
          s->else_body = parse_body({"endif"}, stop);
        }
        break;
      }
    } else if (keyword == "for") {
      s->kind = Stmt::Kind::kFor;
      do {
        s->targets.push_back(make_name(expect_name()));
      } while (accept_op(","));
      if (!accept_name("in")) fail("expected 'in' in the for statement but found " + describe(peek()));
      s->expr = parse_or();  // not a ternary: a trailing `if` filters the loop
      if (accept_name("if")) s->condition = parse_expression();
      accept_name("recursive");
      expect(T::kStmtClose, "'%}'");
      s->body = parse_body({"else", "endfor"}, stop);
      if (stop == "else") {
        expect(T::kStmtClose, "'%}'");
        s->else_body = parse_body({"endfor"}, stop);
      }
    } else if (keyword == "set") {
      s->kind = Stmt::Kind::kSet;
      do {
        ExprPtr target = make_name(expect_name());
        while (accept_op(".")) {
          auto attr = make_expr(Expr::Kind::kAttribute, line);
          attr->a = std::move(target);
          attr->name = expect_name();
          target = std::move(attr);
        }
        s->targets.push_back(std::move(target));
      } while (accept_op(","));
      if (accept_op("=")) {
        s->expr = parse_expression();
        if (at_op(",")) s->expr = parse_tuple_tail(std::move(s->expr));
      } else {
        if (s->targets.size() != 1) fail("a block set takes exactly one name");
        expect(T::kStmtClose, "'%}'");
        s->body = parse_body({"endset"}, stop);
        return finish(std::move(s));
      }
    } else if (keyword == "macro") {
      s->kind = Stmt::Kind::kMacro;
      s->text = expect_name();
      expect_op("(");
      if (!at_op(")")) {
        do {
          std::string param = expect_name();
          ExprPtr def;
          if (accept_op("=")) def = parse_expression();
          s->params.emplace_back(std::move(param), std::move(def));
        } while (accept_op(","));
      }
      expect_op(")");
      expect(T::kStmtClose, "'%}'");
      s->body = parse_body({"endmacro"}, stop);
    } else if (keyword == "filter") {
      s->kind = Stmt::Kind::kFilterBlock;
      s->expr = parse_filter_call(nullptr, line);
      expect(T::kStmtClose, "'%}'");
      s->body = parse_body({"endfilter"}, stop);
    } else if (keyword == "break" || keyword == "continue") {
      s->kind = keyword == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
    } else if (keyword == "generation" || keyword == "endgeneration") {
      // Marks assistant spans for training masks; renders nothing.
      expect(T::kStmtClose, "'%}'");
      return nullptr;
    } else if (keyword == "do") {
      // `{% do list.append(x) %}`: evaluate for effect, print nothing.
      s->kind = Stmt::Kind::kSet;
      s->expr = parse_expression();
    } else {
      throw TemplateError("unsupported statement '{% " + keyword + " %}'", line);
    }
    expect(T::kStmtClose, "'%}'");
    return s;
  }

  std::unique_ptr<Stmt> finish(std::unique_ptr<Stmt> s) {
    expect(T::kStmtClose, "'%}'");
    return s;
  }

  ExprPtr make_name(std::string name) {
    auto e = make_expr(Expr::Kind::kName, peek().line);
    e->name = std::move(name);
    return e;
  }

  ExprPtr parse_tuple_tail(ExprPtr first) {
    auto tuple = make_expr(Expr::Kind::kTuple, first->line);
    tuple->args.push_back(std::move(first));
    while (accept_op(",")) tuple->args.push_back(parse_expression());
    return tuple;
  }

  // Bounds recursion so a hostile template cannot exhaust the stack.
  struct DepthGuard {
    explicit DepthGuard(Parser& p) : parser(p) {
      if (++parser.depth_ > kMaxDepth) parser.fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    ~DepthGuard() { --parser.depth_; }
    Parser& parser;
  };
  static constexpr int kMaxDepth = 200;

  ExprPtr parse_expression() {
    DepthGuard guard(*this);
    ExprPtr value = parse_or();
    if (at_name("if")) {
      const int line = next().line;
      auto t = make_expr(Expr::Kind::kTernary, line);
      t->a = parse_or();
      t->b = std::move(value);
      if (accept_name("else")) t->c = parse_expression();
      return t;
    }
    return value;
  }

  ExprPtr binary(std::string op, ExprPtr lhs, ExprPtr rhs) {
    auto e = make_expr(Expr::Kind::kBinary, lhs->line);
    e->name = std::move(op);
    e->a = std::move(lhs);
    e->b = std::move(rhs);
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr lhs = parse_and();
    while (accept_name("or")) lhs = binary("or", std::move(lhs), parse_and());
    return lhs;
  }
  ExprPtr parse_and() {
    ExprPtr lhs = parse_not();
    while (accept_name("and")) lhs = binary("and", std::move(lhs), parse_not());
    return lhs;
  }
  ExprPtr parse_not() {
    if (at_name("not")) {
      DepthGuard guard(*this);
      const int line = next().line;
      auto e = make_expr(Expr::Kind::kUnary, line);
      e->name = "not";
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr lhs = parse_math1();
    for (;;) {
      const Token& t = peek();
      if (t.type == T::kOp && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == ">" ||
                               t.text == "<=" || t.text == ">=")) {
        std::string op = next().text;
        lhs = binary(op, std::move(lhs), parse_math1());
      } else if (accept_name("in")) {
        lhs = binary("in", std::move(lhs), parse_math1());
      } else if (at_name("not") && peek(1).type == T::kName && peek(1).text == "in") {
        pos_ += 2;
        lhs = binary("not in", std::move(lhs), parse_math1());
      } else {
        return lhs;
      }
    }
  }
  ExprPtr parse_math1() {
    ExprPtr lhs = parse_concat();
    while (at_op("+") || at_op("-")) {
      std::string op = next().text;
      lhs = binary(op, std::move(lhs), parse_concat());
    }
    return lhs;
  }
  ExprPtr parse_concat() {
    ExprPtr lhs = parse_math2();
    while (accept_op("~")) lhs = binary("~", std::move(lhs), parse_math2());
    return lhs;
  }
  ExprPtr parse_math2() {
    ExprPtr lhs = parse_pow();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      std::string op = next().text;
      lhs = binary(op, std::move(lhs), parse_pow());
    }
    return lhs;
  }
  ExprPtr parse_pow() {
    ExprPtr lhs = parse_unary();
    while (accept_op("**")) lhs = binary("**", std::move(lhs), parse_unary());
    return lhs;
  }
  ExprPtr parse_unary() {
    return parse_filters(parse_signed());
  }

  // A sign binds tighter than filters: `-3 | abs` is abs(-3).
  ExprPtr parse_signed() {
    if (at_op("-") || at_op("+")) {
      DepthGuard guard(*this);
      const Token& t = next();
      auto e = make_expr(Expr::Kind::kUnary, t.line);
      e->name = t.text;
      e->a = parse_signed();
      return e;
    }
    return parse_postfix(parse_primary());
  }

  // `| filter` and `is test` chains bind tighter than any binary operator.
  ExprPtr parse_filters(ExprPtr value) {
    for (;;) {
      if (accept_op("|")) {
        value = parse_postfix(parse_filter_call(std::move(value), peek().line));
      } else if (at_name("is")) {
        const int line = next().line;
        auto e = make_expr(Expr::Kind::kTest, line);
        e->negated = accept_name("not");
        e->name = expect_name();
        e->a = std::move(value);
        if (at_op("(")) {
          parse_call_args(*e);
        } else if (starts_test_argument()) {
          e->args.push_back(parse_postfix(parse_primary()));
        }
        value = std::move(e);
      } else {
        return value;
      }
    }
  }

  bool starts_test_argument() const {
    const Token& t = peek();
    if (t.type == T::kString || t.type == T::kInt || t.type == T::kFloat) return true;
    if (t.type != T::kName) return false;
    for (const char* kw : {"and", "or", "if", "else", "in", "is", "not"})
      if (t.text == kw) return false;
    return true;
  }

  ExprPtr parse_filter_call(ExprPtr value, int line) {
    auto e = make_expr(Expr::Kind::kFilter, line);
    e->name = expect_name();
    e->a = std::move(value);
    if (at_op("(")) parse_call_args(*e);
    return e;
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    while (!at_op(")")) {
      if (peek().type == T::kName && peek(1).type == T::kOp && peek(1).text == "=") {
        std::string key = next().text;
        ++pos_;
        e.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        if (!e.kwargs.empty()) fail("a positional argument follows a keyword argument");
        e.args.push_back(parse_expression());
      }
      if (!accept_op(",")) break;
    }
    expect_op(")");
  }

  ExprPtr parse_postfix(ExprPtr value) {
    for (;;) {
      const int line = peek().line;
      if (accept_op(".")) {
        auto e = make_expr(Expr::Kind::kAttribute, line);
        if (peek().type == T::kInt) {
          // `items.0` is an index in Jinja.
          e->kind = Expr::Kind::kIndex;
          e->b = make_expr(Expr::Kind::kLiteral, line);
          e->b->literal = Value::integer(next().int_value);
        } else {
          e->name = expect_name();
        }
        e->a = std::move(value);
        value = std::move(e);
      } else if (accept_op("[")) {
        value = parse_subscript(std::move(value), line);
      } else if (at_op("(")) {
        auto e = make_expr(Expr::Kind::kCall, line);
        e->a = std::move(value);
        parse_call_args(*e);
        value = std::move(e);
      } else {
        return value;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr value, int line) {
    ExprPtr parts[3];
    int colons = 0;
    for (;;) {
      if (at_op("]")) break;
      if (accept_op(":")) {
        if (++colons > 2) fail("too many ':' in a slice");
        continue;
      }
      if (parts[colons]) fail("expected ':' or ']' but found " + describe(peek()));
      parts[colons] = parse_expression();
    }
    expect_op("]");
    if (colons == 0) {
      if (!parts[0]) fail("empty subscript []");
      auto e = make_expr(Expr::Kind::kIndex, line);
      e->a = std::move(value);
      e->b = std::move(parts[0]);
      return e;
    }
    auto e = make_expr(Expr::Kind::kSlice, line);
    e->args.push_back(std::move(value));
    for (auto& p : parts) e->args.push_back(std::move(p));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = peek();
    const int line = t.line;
    auto literal = [&](Value v) {
      auto e = make_expr(Expr::Kind::kLiteral, line);
      e->literal = std::move(v);
      return e;
    };
    switch (t.type) {
      case T::kString: {
        std::string s = next().text;
        while (peek().type == T::kString) s += next().text;  // adjacent literals join
        return literal(Value::string(std::move(s)));
      }
      case T::kInt: return literal(Value::integer(next().int_value));
      case T::kFloat: return literal(Value::number(next().float_value));
      case T::kName: {
        std::string name = next().text;
        if (name == "true" || name == "True") return literal(Value::boolean(true));
        if (name == "false" || name == "False") return literal(Value::boolean(false));
        if (name == "none" || name == "None") return literal(Value::none());
        auto e = make_expr(Expr::Kind::kName, line);
        e->name = std::move(name);
        return e;
      }
      case T::kOp:
        if (accept_op("(")) {
          if (accept_op(")")) return make_expr(Expr::Kind::kTuple, line);
          ExprPtr inner = parse_expression();
          if (at_op(",")) {
            auto tuple = make_expr(Expr::Kind::kTuple, line);
            tuple->args.push_back(std::move(inner));
            while (accept_op(",") && !at_op(")")) tuple->args.push_back(parse_expression());
            inner = std::move(tuple);
          }
          expect_op(")");
          return inner;
        }
        if (accept_op("[")) {
          auto e = make_expr(Expr::Kind::kList, line);
          while (!at_op("]")) {
            e->args.push_back(parse_expression());
            if (!accept_op(",")) break;
          }
          expect_op("]");
          return e;
        }
        if (accept_op("{")) {
          auto e = make_expr(Expr::Kind::kDict, line);
          while (!at_op("}")) {
            e->args.push_back(parse_expression());
            expect_op(":");
            e->args.push_back(parse_expression());
            if (!accept_op(",")) break;
          }
          expect_op("}");
          return e;
        }
        break;
      default: break;
    }
    fail("expected an expression but found " + describe(t));
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Program parse(std::vector<Token> tokens) { return Parser(std::move(tokens)).run(); }

}  // namespace osprey::tmpl
