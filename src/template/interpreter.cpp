#include "template/interpreter.h"

#include <cmath>
#include <memory>

#include "template/builtins.h"

namespace osprey::tmpl {
namespace {

struct Scope;
using ScopePtr = std::shared_ptr<Scope>;

// Variables of one block level; a `for` loop and a macro call get their own,
// so a `set` inside them does not leak out (that is what namespace() is for).
struct Scope {
  ScopePtr parent;
  Object vars;

  Value lookup(const std::string& name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent.get())
      if (const Value* v = s->vars.find(name)) return *v;
    return Value();
  }
};

enum class Flow { kNormal, kBreak, kContinue };

class Interpreter {
 public:
  explicit Interpreter(const RenderLimits& limits) : limits_(limits) {}

  Flow exec(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const auto& stmt : body) {
      Flow flow = exec(*stmt, scope, out);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

 private:
  // Every statement, expression and loop iteration costs steps; copying a
  // container costs one per element, so the budget tracks real work.
  void step(int line, uint64_t cost = 1) {
    steps_ += cost;
    if (steps_ > limits_.max_steps)
      throw TemplateError("rendering took more than " + std::to_string(limits_.max_steps) + " steps", line);
  }

  void emit(std::string& out, const std::string& text, int line) const {
    if (out.size() + text.size() > limits_.max_output_bytes)
      throw TemplateError("rendered output exceeds " + std::to_string(limits_.max_output_bytes) + " bytes", line);
    out += text;
  }

  Flow exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
    step(s.line);
    switch (s.kind) {
      case Stmt::Kind::kText: emit(out, s.text, s.line); return Flow::kNormal;
      case Stmt::Kind::kOutput: emit(out, eval(*s.expr, scope).str(), s.line); return Flow::kNormal;
      case Stmt::Kind::kIf:
        for (const auto& [cond, body] : s.branches)
          if (eval(*cond, scope).truthy()) return exec(body, scope, out);
        return exec(s.else_body, scope, out);
      case Stmt::Kind::kFor: return exec_for(s, scope, out);
      case Stmt::Kind::kSet: exec_set(s, scope); return Flow::kNormal;
      case Stmt::Kind::kMacro: define_macro(s, scope); return Flow::kNormal;
      case Stmt::Kind::kFilterBlock: {
        std::string inner;
        exec(s.body, scope, inner);
        CallArgs args = eval_args(*s.expr, scope);
        emit(out, apply_filter(s.expr->name, Value::string(inner), args).str(), s.line);
        return Flow::kNormal;
      }
      case Stmt::Kind::kBreak: return Flow::kBreak;
      case Stmt::Kind::kContinue: return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  void bind_targets(const std::vector<ExprPtr>& targets, const Value& value, Scope& scope, int line) {
    if (targets.size() == 1) {
      scope.vars.set(targets[0]->name, value);
      return;
    }
    if (!value.is_array() || value.array->size() != targets.size())
      throw TemplateError("cannot unpack " + value.type_name() + " into " + std::to_string(targets.size()) + " names", line);
    for (size_t k = 0; k < targets.size(); ++k) scope.vars.set(targets[k]->name, (*value.array)[k]);
  }

  Flow exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
    Array items = iterate(eval(*s.expr, scope), s.line);
    step(s.line, items.size());
    if (s.condition) {
      // `for x in xs if cond` filters first, so loop.length counts what remains.
      Array kept;
      for (auto& item : items) {
        auto probe = std::make_shared<Scope>();
        probe->parent = scope;
        bind_targets(s.targets, item, *probe, s.line);
        if (eval(*s.condition, probe).truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec(s.else_body, scope, out) == Flow::kBreak ? Flow::kNormal : Flow::kNormal;
    const int64_t n = static_cast<int64_t>(items.size());
    // One scope for the whole loop: a `set` in one iteration is seen by the
    // next, but not after the loop.
    auto inner = std::make_shared<Scope>();
    inner->parent = scope;
    for (int64_t k = 0; k < n; ++k) {
      step(s.line, 16);  // the loop object
      Value loop = Value::dict();
      Object& l = *loop.object;
      l.set("index", Value::integer(k + 1));
      l.set("index0", Value::integer(k));
      l.set("revindex", Value::integer(n - k));
      l.set("revindex0", Value::integer(n - k - 1));
      l.set("first", Value::boolean(k == 0));
      l.set("last", Value::boolean(k == n - 1));
      l.set("length", Value::integer(n));
      l.set("previtem", k > 0 ? items[static_cast<size_t>(k - 1)] : Value());
      l.set("nextitem", k + 1 < n ? items[static_cast<size_t>(k + 1)] : Value());
      l.set("depth", Value::integer(1));
      l.set("depth0", Value::integer(0));
      l.set("cycle", Value::function("cycle", [k](CallArgs& args) {
        if (args.positional.empty()) throw TemplateError("loop.cycle() needs arguments", args.line);
        return args.positional[static_cast<size_t>(k) % args.positional.size()];
      }));
      inner->vars.set("loop", loop);
      bind_targets(s.targets, items[static_cast<size_t>(k)], *inner, s.line);
      if (exec(s.body, inner, out) == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  void exec_set(const Stmt& s, const ScopePtr& scope) {
    Value value;
    if (s.expr) {
      value = eval(*s.expr, scope);
    } else {
      std::string inner;
      exec(s.body, scope, inner);
      value = Value::string(std::move(inner));
    }
    if (s.targets.empty()) return;  // `{% do %}`
    if (s.targets.size() == 1 && s.targets[0]->kind == Expr::Kind::kAttribute) {
      const Expr& target = *s.targets[0];
      Value object = eval(*target.a, scope);
      if (!object.is_object())
        throw TemplateError("cannot set attribute '" + target.name + "' on a " + object.type_name(), s.line);
      object.object->set(target.name, std::move(value));
      return;
    }
    for (const auto& t : s.targets)
      if (t->kind != Expr::Kind::kName) throw TemplateError("cannot assign to this target", s.line);
    bind_targets(s.targets, value, *scope, s.line);
  }

  void define_macro(const Stmt& s, const ScopePtr& scope) {
    const Stmt* macro = &s;
    std::weak_ptr<Scope> defining = scope;
    scope->vars.set(s.text, Value::function(s.text, [this, macro, defining](CallArgs& args) {
      ScopePtr parent = defining.lock();
      if (!parent) throw TemplateError("macro '" + macro->text + "' called after its scope ended", args.line);
      if (++call_depth_ > limits_.max_call_depth)
        throw TemplateError("macro calls nested deeper than " + std::to_string(limits_.max_call_depth), args.line);
      auto call_scope = std::make_shared<Scope>();
      call_scope->parent = parent;
      for (size_t k = 0; k < macro->params.size(); ++k) {
        const auto& [param, def] = macro->params[k];
        Value v = args.get(k, param.c_str());
        if (v.is_undefined() && def) v = eval(*def, parent);
        call_scope->vars.set(param, v);
      }
      std::string out;
      exec(macro->body, call_scope, out);
      --call_depth_;
      return Value::string(std::move(out));
    }));
  }

  CallArgs eval_args(const Expr& e, const ScopePtr& scope) {
    CallArgs args;
    args.line = e.line;
    for (const auto& a : e.args) args.positional.push_back(eval(*a, scope));
    for (const auto& [k, a] : e.kwargs) args.keyword.emplace_back(k, eval(*a, scope));
    return args;
  }

  static int64_t clamp_index(int64_t k, int64_t n, bool negative_step) {
    if (k < 0) k += n;
    if (negative_step) return std::clamp<int64_t>(k, -1, n - 1);
    return std::clamp<int64_t>(k, 0, n);
  }

  Value eval_slice(const Expr& e, const ScopePtr& scope) {
    Value target = eval(*e.args[0], scope);
    auto part = [&](size_t k) { return e.args[k] ? eval(*e.args[k], scope) : Value(); };
    Value start_v = part(1), stop_v = part(2), step_v = part(3);
    const int64_t step_n = step_v.kind == Value::Kind::kInt ? step_v.i : 1;
    if (step_n == 0) throw TemplateError("slice step cannot be zero", e.line);
    Array items = target.is_string() ? iterate(target, e.line) : target.is_array() ? *target.array : Array{};
    if (!target.is_string() && !target.is_array()) throw TemplateError("cannot slice a " + target.type_name(), e.line);
    const int64_t n = static_cast<int64_t>(items.size());
    const bool neg = step_n < 0;
    int64_t start = start_v.kind == Value::Kind::kInt ? clamp_index(start_v.i, n, neg) : (neg ? n - 1 : 0);
    int64_t stop = stop_v.kind == Value::Kind::kInt ? clamp_index(stop_v.i, n, neg) : (neg ? -1 : n);
    Array out;
    for (int64_t k = start; neg ? k > stop : k < stop; k += step_n) out.push_back(items[static_cast<size_t>(k)]);
    if (target.is_string()) {
      std::string s;
      for (const auto& c : out) s += c.s;
      return Value::string(std::move(s));
    }
    return Value::list(std::move(out));
  }

  Value eval(const Expr& e, const ScopePtr& scope) {
    step(e.line);
    switch (e.kind) {
      case Expr::Kind::kLiteral: return e.literal;
      case Expr::Kind::kName: return scope->lookup(e.name);
      case Expr::Kind::kAttribute: return get_attribute(eval(*e.a, scope), e.name);
      case Expr::Kind::kIndex: {
        Value target = eval(*e.a, scope);
        Value key = eval(*e.b, scope);
        Value item = get_item(target, key);
        if (item.is_undefined() && key.is_string()) return get_attribute(target, key.s);
        return item;
      }
      case Expr::Kind::kSlice: return eval_slice(e, scope);
      case Expr::Kind::kCall: {
        Value callee = eval(*e.a, scope);
        // Built-ins such as range() build containers; charge for what they return.
        if (callee.kind != Value::Kind::kCallable) {
          std::string what = e.a->kind == Expr::Kind::kName ? "'" + e.a->name + "'"
                             : e.a->kind == Expr::Kind::kAttribute ? "'" + e.a->name + "'" : "expression";
          throw TemplateError(what + " is not a function (it is " + callee.type_name() + ")", e.line);
        }
        CallArgs args = eval_args(e, scope);
        Value result = callee.callable->fn(args);
        if (result.is_array()) step(e.line, result.array->size());
        return result;
      }
      case Expr::Kind::kFilter: {
        Value value = eval(*e.a, scope);
        CallArgs args = eval_args(e, scope);
        return apply_filter(e.name, value, args);
      }
      case Expr::Kind::kTest: {
        Value value = eval(*e.a, scope);
        std::vector<Value> args;
        for (const auto& a : e.args) args.push_back(eval(*a, scope));
        return Value::boolean(apply_test(e.name, value, args, e.line) != e.negated);
      }
      case Expr::Kind::kUnary: {
        Value v = eval(*e.a, scope);
        if (e.name == "not") return Value::boolean(!v.truthy());
        if (v.kind == Value::Kind::kInt) return Value::integer(e.name == "-" ? -v.i : v.i);
        if (v.kind == Value::Kind::kFloat) return Value::number(e.name == "-" ? -v.f : v.f);
        throw TemplateError("unary " + e.name + " needs a number, got " + v.type_name(), e.line);
      }
      case Expr::Kind::kBinary: return eval_binary(e, scope);
      case Expr::Kind::kTernary:
        if (eval(*e.a, scope).truthy()) return eval(*e.b, scope);
        return e.c ? eval(*e.c, scope) : Value();
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        Array items;
        for (const auto& a : e.args) items.push_back(eval(*a, scope));
        return Value::list(std::move(items));
      }
      case Expr::Kind::kDict: {
        Value d = Value::dict();
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          Value key = eval(*e.args[k], scope);
          d.object->set(key.str(), eval(*e.args[k + 1], scope));
        }
        return d;
      }
    }
    return Value();
  }

  static bool contains(const Value& container, const Value& item) {
    if (container.is_string()) return item.is_string() && container.s.find(item.s) != std::string::npos;
    if (container.is_array())
      for (const auto& x : *container.array)
        if (equals(x, item)) return true;
    if (container.is_object()) return item.is_string() && container.object->find(item.s) != nullptr;
    return false;
  }

  Value eval_binary(const Expr& e, const ScopePtr& scope) {
    const std::string& op = e.name;
    Value l = eval(*e.a, scope);
    if (op == "and") return l.truthy() ? eval(*e.b, scope) : l;
    if (op == "or") return l.truthy() ? l : eval(*e.b, scope);
    Value r = eval(*e.b, scope);
    if (op == "==") return Value::boolean(equals(l, r));
    if (op == "!=") return Value::boolean(!equals(l, r));
    if (op == "in") return Value::boolean(contains(r, l));
    if (op == "not in") return Value::boolean(!contains(r, l));
    if (op == "~") return Value::string(l.str() + r.str());
    auto fail = [&]() -> Value {
      throw TemplateError("cannot apply '" + op + "' to " + l.type_name() + " and " + r.type_name(), e.line);
    };
    if (l.is_number() && r.is_number()) {
      const bool is_float = l.kind == Value::Kind::kFloat || r.kind == Value::Kind::kFloat;
      const double a = l.as_double(), b = r.as_double();
      if (op == "<") return Value::boolean(a < b);
      if (op == ">") return Value::boolean(a > b);
      if (op == "<=") return Value::boolean(a <= b);
      if (op == ">=") return Value::boolean(a >= b);
      if (op == "+") return is_float ? Value::number(a + b) : Value::integer(l.i + r.i);
      if (op == "-") return is_float ? Value::number(a - b) : Value::integer(l.i - r.i);
      if (op == "*") return is_float ? Value::number(a * b) : Value::integer(l.i * r.i);
      if (op == "**") {
        if (!is_float && r.i >= 0) {
          int64_t result = 1;
          for (int64_t k = 0; k < r.i && k < 64; ++k) result *= l.i;
          return Value::integer(result);
        }
        return Value::number(std::pow(a, b));
      }
      if (b == 0 && (op == "/" || op == "//" || op == "%")) throw TemplateError("division by zero", e.line);
      if (op == "/") return Value::number(a / b);
      if (op == "//") {
        if (is_float) return Value::number(std::floor(a / b));
        int64_t q = l.i / r.i;
        if ((l.i % r.i != 0) && ((l.i < 0) != (r.i < 0))) --q;
        return Value::integer(q);
      }
      if (op == "%") {
        if (is_float) return Value::number(a - b * std::floor(a / b));
        int64_t m = l.i % r.i;
        if (m != 0 && ((m < 0) != (r.i < 0))) m += r.i;
        return Value::integer(m);
      }
      return fail();
    }
    if (l.is_undefined() || r.is_undefined() || l.is_none() || r.is_none()) return fail();
    if (l.is_string() && r.is_string()) {
      if (op == "<") return Value::boolean(l.s < r.s);
      if (op == ">") return Value::boolean(l.s > r.s);
      if (op == "<=") return Value::boolean(l.s <= r.s);
      if (op == ">=") return Value::boolean(l.s >= r.s);
    }
    if (op == "+") {
      if (l.is_array() && r.is_array()) {
        Array items = *l.array;
        items.insert(items.end(), r.array->begin(), r.array->end());
        return Value::list(std::move(items));
      }
      // The reference renderer joins a string with anything by its text.
      if (l.is_string() || r.is_string()) {
        std::string joined = l.str() + r.str();
        if (joined.size() > limits_.max_output_bytes) throw TemplateError("string grows past the output limit", e.line);
        return Value::string(std::move(joined));
      }
    }
    if (op == "*" && l.is_string() && r.kind == Value::Kind::kInt) {
      if (r.i > 0 && l.s.size() * static_cast<size_t>(r.i) > limits_.max_output_bytes)
        throw TemplateError("string repetition exceeds the output limit", e.line);
      std::string s;
      for (int64_t k = 0; k < r.i; ++k) s += l.s;
      return Value::string(std::move(s));
    }
    return fail();
  }

  const RenderLimits& limits_;
  uint64_t steps_ = 0;
  int call_depth_ = 0;
};

}  // namespace

std::string render(const Program& program, const Value& context, const RenderLimits& limits) {
  auto globals = std::make_shared<Scope>();
  add_globals(globals->vars);
  auto top = std::make_shared<Scope>();
  top->parent = globals;
  if (context.is_object())
    for (const auto& [k, v] : context.object->entries) top->vars.set(k, v);
  Interpreter interpreter(limits);
  std::string out;
  interpreter.exec(program.body, top, out);
  return out;
}

}  // namespace osprey::tmpl
