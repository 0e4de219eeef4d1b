#include "model/jinja/evaluator.h"

#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "model/jinja/errors.h"
#include "model/jinja/filters.h"
#include "model/jinja/tests.h"
#include "model/jinja/value_ops.h"

namespace tandem::jinja {
namespace {

class Scope : public std::enable_shared_from_this<Scope> {
 public:
  explicit Scope(std::shared_ptr<Scope> parent) : parent_(std::move(parent)) {}

  const Value* Lookup(const std::string& name) const {
    for (const Scope* scope = this; scope != nullptr; scope = scope->parent_.get()) {
      auto it = scope->vars_.find(name);
      if (it != scope->vars_.end()) return &it->second;
    }
    return nullptr;
  }
  void Set(const std::string& name, Value value) { vars_[name] = std::move(value); }

 private:
  absl::flat_hash_map<std::string, Value> vars_;
  std::shared_ptr<Scope> parent_;
};

using ScopePtr = std::shared_ptr<Scope>;

enum class Flow { kNormal, kBreak, kContinue };

class Evaluator {
 public:
  explicit Evaluator(const RenderOptions& options) : options_(options) {}

  absl::StatusOr<std::string> Run(const StmtList& body, const ValueDict& variables) {
    auto globals = std::make_shared<Scope>(nullptr);
    for (auto& [name, value] : MakeGlobals(options_.clock, options_.limits.max_range)) {
      globals->Set(name, std::move(value));
    }
    auto root = std::make_shared<Scope>(globals);
    for (const auto& [name, value] : variables.items()) root->Set(name, value);
    std::string out;
    TANDEM_ASSIGN_OR_RETURN(Flow flow, Exec(body, root, &out));
    (void)flow;  // break/continue outside loops are rejected by the parser
    return out;
  }

 private:
  // Counts nesting of Exec/Eval; fails past the limit instead of overflowing the stack.
  class DepthGuard {
   public:
    explicit DepthGuard(Evaluator* evaluator) : evaluator_(evaluator) { ++evaluator_->depth_; }
    ~DepthGuard() { --evaluator_->depth_; }
    absl::Status Check() const {
      if (evaluator_->depth_ > evaluator_->options_.limits.max_depth) {
        return LimitError(
            absl::StrFormat("nesting deeper than %d", evaluator_->options_.limits.max_depth));
      }
      return absl::OkStatus();
    }

   private:
    Evaluator* evaluator_;
  };

  absl::Status Step() {
    if (++steps_ > options_.limits.max_steps) {
      return LimitError(absl::StrFormat("more than %d steps", options_.limits.max_steps));
    }
    return absl::OkStatus();
  }

  absl::Status Emit(absl::string_view text, std::string* out) {
    if (out->size() + text.size() > options_.limits.max_output_bytes) {
      return LimitError(
          absl::StrFormat("output larger than %d bytes", options_.limits.max_output_bytes));
    }
    out->append(text.data(), text.size());
    return absl::OkStatus();
  }

  // ---- statements ----

  absl::StatusOr<Flow> Exec(const StmtList& body, const ScopePtr& scope, std::string* out) {
    DepthGuard guard(this);
    TANDEM_RETURN_IF_ERROR(guard.Check());
    for (const StmtPtr& stmt : body) {
      TANDEM_RETURN_IF_ERROR(Step());
      TANDEM_ASSIGN_OR_RETURN(Flow flow, ExecStmt(*stmt, scope, out));
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  absl::StatusOr<Flow> ExecStmt(const Stmt& stmt, const ScopePtr& scope, std::string* out) {
    switch (stmt.kind) {
      case StmtKind::kText:
        TANDEM_RETURN_IF_ERROR(Emit(stmt.text, out));
        return Flow::kNormal;
      case StmtKind::kOutput: {
        TANDEM_ASSIGN_OR_RETURN(Value value, Eval(*stmt.expr, scope));
        TANDEM_RETURN_IF_ERROR(Emit(value.ToString(), out));
        return Flow::kNormal;
      }
      case StmtKind::kIf:
        for (const auto& [condition, body] : stmt.branches) {
          TANDEM_ASSIGN_OR_RETURN(Value test, Eval(*condition, scope));
          if (test.Truthy()) return Exec(body, scope, out);
        }
        return Exec(stmt.else_body, scope, out);
      case StmtKind::kFor:
        TANDEM_RETURN_IF_ERROR(ExecFor(stmt, scope, out));
        return Flow::kNormal;
      case StmtKind::kSet: {
        TANDEM_ASSIGN_OR_RETURN(Value value, Eval(*stmt.expr, scope));
        TANDEM_RETURN_IF_ERROR(Assign(stmt, std::move(value), scope));
        return Flow::kNormal;
      }
      case StmtKind::kSetBlock: {
        std::string captured;
        TANDEM_ASSIGN_OR_RETURN(Flow flow, Exec(stmt.body, scope, &captured));
        (void)flow;
        Value value = Value::String(std::move(captured));
        if (stmt.expr != nullptr) {
          TANDEM_ASSIGN_OR_RETURN(value, EvalFilterChain(*stmt.expr, value, scope));
        }
        scope->Set(stmt.targets[0], std::move(value));
        return Flow::kNormal;
      }
      case StmtKind::kMacro:
        scope->Set(stmt.name, MakeMacro(stmt, scope));
        return Flow::kNormal;
      case StmtKind::kCallBlock: {
        TANDEM_ASSIGN_OR_RETURN(Value value, EvalCallBlock(stmt, scope));
        TANDEM_RETURN_IF_ERROR(Emit(value.ToString(), out));
        return Flow::kNormal;
      }
      case StmtKind::kFilterBlock: {
        std::string captured;
        TANDEM_ASSIGN_OR_RETURN(Flow flow, Exec(stmt.body, scope, &captured));
        (void)flow;
        TANDEM_ASSIGN_OR_RETURN(
            Value value, EvalFilterChain(*stmt.expr, Value::String(std::move(captured)), scope));
        TANDEM_RETURN_IF_ERROR(Emit(value.ToString(), out));
        return Flow::kNormal;
      }
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
      case StmtKind::kScope:
        return Exec(stmt.body, scope, out);
    }
    return Flow::kNormal;
  }

  static absl::Status Unpack(const std::vector<std::string>& targets, const Value& value,
                             Scope* scope) {
    if (targets.size() == 1) {
      scope->Set(targets[0], value);
      return absl::OkStatus();
    }
    TANDEM_ASSIGN_OR_RETURN(ValueList items, Iterate(value));
    if (items.size() != targets.size()) {
      return ValueError(absl::StrFormat(items.size() > targets.size()
                                            ? "too many values to unpack (expected %d)"
                                            : "not enough values to unpack (expected %d)",
                                        targets.size()));
    }
    for (size_t i = 0; i < targets.size(); ++i) scope->Set(targets[i], items[i]);
    return absl::OkStatus();
  }

  absl::Status Assign(const Stmt& stmt, Value value, const ScopePtr& scope) {
    if (stmt.attribute.empty()) return Unpack(stmt.targets, value, scope.get());
    const Value* target = scope->Lookup(stmt.targets[0]);
    if (target == nullptr || !target->is_namespace()) {
      return TemplateError(absl::StrFormat(
          "TemplateRuntimeError: cannot assign attribute on non-namespace object '%s'",
          stmt.targets[0]));
    }
    target->mutable_dict().Set(stmt.attribute, std::move(value));
    return absl::OkStatus();
  }

  absl::Status ExecFor(const Stmt& stmt, const ScopePtr& scope, std::string* out) {
    TANDEM_ASSIGN_OR_RETURN(Value iterable, Eval(*stmt.expr, scope));
    TANDEM_ASSIGN_OR_RETURN(ValueList items, Iterate(iterable));
    if (stmt.condition != nullptr) {
      // `for x in xs if cond`: filtered first, so loop.length counts what is kept.
      ValueList kept;
      for (Value& item : items) {
        TANDEM_RETURN_IF_ERROR(Step());
        auto probe = std::make_shared<Scope>(scope);
        TANDEM_RETURN_IF_ERROR(Unpack(stmt.targets, item, probe.get()));
        TANDEM_ASSIGN_OR_RETURN(Value keep, Eval(*stmt.condition, probe));
        if (keep.Truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    const int64_t length = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < length; ++i) {
      TANDEM_RETURN_IF_ERROR(Step());
      auto iteration = std::make_shared<Scope>(scope);
      TANDEM_RETURN_IF_ERROR(Unpack(stmt.targets, items[i], iteration.get()));
      ValueDict loop;
      loop.Set("index", Value::Int(i + 1));
      loop.Set("index0", Value::Int(i));
      loop.Set("revindex", Value::Int(length - i));
      loop.Set("revindex0", Value::Int(length - i - 1));
      loop.Set("first", Value::Bool(i == 0));
      loop.Set("last", Value::Bool(i == length - 1));
      loop.Set("length", Value::Int(length));
      loop.Set("depth", Value::Int(1));
      loop.Set("depth0", Value::Int(0));
      loop.Set("previtem", i > 0 ? items[i - 1] : Value::Undefined("there is no previous item"));
      loop.Set("nextitem",
               i + 1 < length ? items[i + 1] : Value::Undefined("there is no next item"));
      loop.Set("cycle",
               Value::Function("cycle", [i](const CallArgs& args) -> absl::StatusOr<Value> {
                 if (args.positional.empty()) return TypeError("no items for cycling given");
                 return args.positional[static_cast<size_t>(i) % args.positional.size()];
               }));
      iteration->Set("loop", Value::Dict(std::move(loop)));
      TANDEM_ASSIGN_OR_RETURN(Flow flow, Exec(stmt.body, iteration, out));
      if (flow == Flow::kBreak) break;
    }
    if (length == 0 && !stmt.else_body.empty()) {
      auto else_scope = std::make_shared<Scope>(scope);
      TANDEM_ASSIGN_OR_RETURN(Flow flow, Exec(stmt.else_body, else_scope, out));
      (void)flow;
    }
    return absl::OkStatus();
  }

  // A macro is a function value that renders its body in a child of the defining scope. The
  // scope usually holds the macro itself, so the closure holds it by raw pointer and the
  // evaluator keeps it alive until the render ends, instead of a shared_ptr cycle.
  Value MakeMacro(const Stmt& stmt, const ScopePtr& defining_scope) {
    const Stmt* macro = &stmt;
    kept_scopes_.push_back(defining_scope);
    Scope* raw_scope = defining_scope.get();
    return Value::Function(stmt.name, [this, macro, raw_scope](const CallArgs& args) {
      return CallMacro(*macro, macro->params, macro->body, raw_scope, args);
    });
  }

  absl::StatusOr<Value> CallMacro(const Stmt& macro, const std::vector<Param>& params,
                                  const StmtList& body, Scope* defining_scope,
                                  const CallArgs& args) {
    if (macro_depth_ >= options_.limits.max_macro_depth) {
      return LimitError(
          absl::StrFormat("macro calls nested deeper than %d", options_.limits.max_macro_depth));
    }
    if (args.positional.size() > params.size()) {
      return TypeError(absl::StrFormat("macro '%s' takes not more than %d argument(s)", macro.name,
                                       params.size()));
    }
    auto scope = std::make_shared<Scope>(defining_scope->shared_from_this());
    std::vector<bool> bound(params.size(), false);
    for (size_t i = 0; i < args.positional.size(); ++i) {
      scope->Set(params[i].name, args.positional[i]);
      bound[i] = true;
    }
    for (const auto& [name, value] : args.keyword) {
      if (name == "caller") {
        scope->Set("caller", value);
        continue;
      }
      size_t index = params.size();
      for (size_t i = 0; i < params.size(); ++i) {
        if (params[i].name == name) index = i;
      }
      if (index == params.size()) {
        return TypeError(
            absl::StrFormat("macro '%s' takes no keyword argument '%s'", macro.name, name));
      }
      if (bound[index]) {
        return TypeError(
            absl::StrFormat("macro '%s' got multiple values for argument '%s'", macro.name, name));
      }
      scope->Set(name, value);
      bound[index] = true;
    }
    ++macro_depth_;
    for (size_t i = 0; i < params.size(); ++i) {
      if (bound[i]) continue;
      if (params[i].default_value == nullptr) {
        scope->Set(params[i].name, Value::Undefined(absl::StrFormat(
                                       "parameter '%s' was not provided", params[i].name)));
        continue;
      }
      auto value = Eval(*params[i].default_value, scope);
      if (!value.ok()) {
        --macro_depth_;
        return value.status();
      }
      scope->Set(params[i].name, std::move(*value));
    }
    std::string out;
    auto flow = Exec(body, scope, &out);
    --macro_depth_;
    if (!flow.ok()) return flow.status();
    return Value::String(std::move(out));
  }

  absl::StatusOr<Value> EvalCallBlock(const Stmt& stmt, const ScopePtr& scope) {
    const Expr& call = *stmt.expr;
    TANDEM_ASSIGN_OR_RETURN(Value callee, Eval(*call.a, scope));
    TANDEM_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(call.args, scope));
    const Stmt* block = &stmt;
    kept_scopes_.push_back(scope);
    Scope* raw_scope = scope.get();
    args.keyword.emplace_back(
        "caller", Value::Function("caller", [this, block, raw_scope](const CallArgs& caller_args) {
          return CallMacro(*block, block->params, block->body, raw_scope, caller_args);
        }));
    return CallValue(callee, args);
  }

  // ---- expressions ----

  absl::StatusOr<CallArgs> EvalArgs(const ArgList& list, const ScopePtr& scope) {
    CallArgs args;
    for (const ExprPtr& expr : list.positional) {
      TANDEM_ASSIGN_OR_RETURN(Value value, Eval(*expr, scope));
      args.positional.push_back(std::move(value));
    }
    for (const auto& [name, expr] : list.keyword) {
      TANDEM_ASSIGN_OR_RETURN(Value value, Eval(*expr, scope));
      args.keyword.emplace_back(name, std::move(value));
    }
    return args;
  }

  static absl::StatusOr<Value> CallValue(const Value& callee, const CallArgs& args) {
    if (callee.is_callable()) return callee.callable().fn(args);
    if (callee.is_undefined()) {
      return UndefinedError(callee.undefined_name().empty() ? "an undefined value is not callable"
                                                            : callee.undefined_name());
    }
    return TypeError(absl::StrFormat("'%s' object is not callable", callee.TypeName()));
  }

  // A filter chain whose innermost operand is null gets `input` there ({% filter %} blocks).
  absl::StatusOr<Value> EvalFilterChain(const Expr& expr, const Value& input,
                                        const ScopePtr& scope) {
    Value operand = input;
    if (expr.a != nullptr) {
      TANDEM_ASSIGN_OR_RETURN(operand, EvalFilterChain(*expr.a, input, scope));
    }
    TANDEM_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(expr.args, scope));
    return ApplyFilter(expr.name, operand, args);
  }

  absl::StatusOr<Value> Eval(const Expr& expr, const ScopePtr& scope) {
    DepthGuard guard(this);
    TANDEM_RETURN_IF_ERROR(guard.Check());
    switch (expr.kind) {
      case ExprKind::kLiteral:
        return expr.literal;
      case ExprKind::kName: {
        if (const Value* value = scope->Lookup(expr.name)) return *value;
        return Value::Undefined(absl::StrFormat("'%s' is undefined", expr.name));
      }
      case ExprKind::kList:
      case ExprKind::kTuple: {
        ValueList items;
        for (const ExprPtr& item : expr.items) {
          TANDEM_ASSIGN_OR_RETURN(Value value, Eval(*item, scope));
          items.push_back(std::move(value));
        }
        return expr.kind == ExprKind::kList ? Value::List(std::move(items))
                                            : Value::Tuple(std::move(items));
      }
      case ExprKind::kDict: {
        ValueDict dict;
        for (size_t i = 0; i + 1 < expr.items.size(); i += 2) {
          TANDEM_ASSIGN_OR_RETURN(Value key, Eval(*expr.items[i], scope));
          TANDEM_ASSIGN_OR_RETURN(Value value, Eval(*expr.items[i + 1], scope));
          dict.Set(key.ToString(), std::move(value));
        }
        return Value::Dict(std::move(dict));
      }
      case ExprKind::kGetAttr: {
        TANDEM_ASSIGN_OR_RETURN(Value object, Eval(*expr.a, scope));
        return GetAttr(object, expr.name);
      }
      case ExprKind::kGetItem: {
        TANDEM_ASSIGN_OR_RETURN(Value object, Eval(*expr.a, scope));
        TANDEM_ASSIGN_OR_RETURN(Value key, Eval(*expr.b, scope));
        return GetItem(object, key);
      }
      case ExprKind::kSlice: {
        TANDEM_ASSIGN_OR_RETURN(Value object, Eval(*expr.a, scope));
        Value parts[3];
        for (int i = 0; i < 3; ++i) {
          if (expr.items[i] != nullptr) {
            TANDEM_ASSIGN_OR_RETURN(parts[i], Eval(*expr.items[i], scope));
          }
        }
        return Slice(object, parts[0], parts[1], parts[2]);
      }
      case ExprKind::kCall: {
        TANDEM_ASSIGN_OR_RETURN(Value callee, Eval(*expr.a, scope));
        TANDEM_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(expr.args, scope));
        return CallValue(callee, args);
      }
      case ExprKind::kFilter: {
        TANDEM_ASSIGN_OR_RETURN(Value input, Eval(*expr.a, scope));
        TANDEM_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(expr.args, scope));
        return ApplyFilter(expr.name, input, args);
      }
      case ExprKind::kTest: {
        TANDEM_ASSIGN_OR_RETURN(Value value, Eval(*expr.a, scope));
        TANDEM_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(expr.args, scope));
        TANDEM_ASSIGN_OR_RETURN(bool result, ApplyTest(expr.name, value, args));
        return Value::Bool(result != expr.negated);
      }
      case ExprKind::kUnary: {
        TANDEM_ASSIGN_OR_RETURN(Value operand, Eval(*expr.a, scope));
        if (expr.name == "not") return Value::Bool(!operand.Truthy());
        if (expr.name == "-") return Negate(operand);
        if (!operand.is_number()) {
          if (operand.is_undefined()) return UndefinedError(operand.undefined_name());
          return TypeError(
              absl::StrFormat("bad operand type for unary +: '%s'", operand.TypeName()));
        }
        return operand;
      }
      case ExprKind::kBinary: {
        TANDEM_ASSIGN_OR_RETURN(Value lhs, Eval(*expr.a, scope));
        // Python's `and`/`or` short-circuit and yield an operand, not a bool.
        if (expr.name == "and") return lhs.Truthy() ? Eval(*expr.b, scope) : lhs;
        if (expr.name == "or") return lhs.Truthy() ? lhs : Eval(*expr.b, scope);
        TANDEM_ASSIGN_OR_RETURN(Value rhs, Eval(*expr.b, scope));
        return BinaryOp(expr.name, lhs, rhs, options_.limits.max_output_bytes);
      }
      case ExprKind::kCompare: {
        TANDEM_ASSIGN_OR_RETURN(Value lhs, Eval(*expr.items[0], scope));
        for (size_t i = 0; i < expr.ops.size(); ++i) {
          TANDEM_ASSIGN_OR_RETURN(Value rhs, Eval(*expr.items[i + 1], scope));
          TANDEM_ASSIGN_OR_RETURN(bool holds, CompareOp(expr.ops[i], lhs, rhs));
          if (!holds) return Value::Bool(false);
          lhs = std::move(rhs);
        }
        return Value::Bool(true);
      }
      case ExprKind::kCondExpr: {
        TANDEM_ASSIGN_OR_RETURN(Value test, Eval(*expr.b, scope));
        if (test.Truthy()) return Eval(*expr.a, scope);
        if (expr.c != nullptr) return Eval(*expr.c, scope);
        return Value::Undefined("the inline if expression had no else branch");
      }
    }
    return TypeError("unknown expression");
  }

  const RenderOptions& options_;
  std::vector<ScopePtr> kept_scopes_;  // scopes that macros and callers were defined in
  int depth_ = 0;
  int macro_depth_ = 0;
  int64_t steps_ = 0;
};

}  // namespace

absl::StatusOr<std::string> Evaluate(const StmtList& body, const ValueDict& variables,
                                     const RenderOptions& options) {
  Evaluator evaluator(options);
  return evaluator.Run(body, variables);
}

}  // namespace tandem::jinja
