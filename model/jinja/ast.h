// The parse tree of a template: expressions and statements, as the parser builds them and the
// evaluator walks them. Plain structs: one node kind enum each, fields used per kind as noted.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/jinja/value.h"

namespace tandem::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct ArgList {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

enum class ExprKind {
  kLiteral,   // literal
  kName,      // name
  kList,      // items
  kTuple,     // items
  kDict,      // items: key0, value0, key1, value1, ...
  kGetAttr,   // a.name
  kGetItem,   // a[b]
  kSlice,     // a[items[0]:items[1]:items[2]], each possibly null
  kCall,      // a(args)
  kFilter,    // a | name(args); a is null inside `{% filter %}`
  kTest,      // a is [not] name(args)
  kUnary,     // name in {not, -, +}, operand a
  kBinary,    // a name b, name in {or, and, +, -, *, /, //, %, **, ~}
  kCompare,   // items[0] ops[0] items[1] ops[1] items[2] ... (chained like Python)
  kCondExpr,  // a if b else c (c may be null: undefined)
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 0;
  int column = 0;
  Value literal;
  std::string name;
  ExprPtr a;
  ExprPtr b;
  ExprPtr c;
  std::vector<ExprPtr> items;
  std::vector<std::string> ops;
  ArgList args;
  bool negated = false;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using StmtList = std::vector<StmtPtr>;

enum class StmtKind {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // branches (condition, body), else_body
  kFor,          // for targets in expr [if condition]: body, else_body
  kSet,          // set targets = expr; `ns.attr` when attribute is set (targets[0] = ns)
  kSetBlock,     // {% set targets[0] %}body{% endset %}
  kMacro,        // macro name(params): body
  kCallBlock,    // {% call(params) expr %}body{% endcall %}
  kFilterBlock,  // {% filter expr %}body{% endfilter %}; expr is a filter chain on null
  kBreak,
  kContinue,
  kScope,  // a body run as is ({% generation %})
};

struct Param {
  std::string name;
  ExprPtr default_value;  // null when required
};

struct Stmt {
  StmtKind kind = StmtKind::kText;
  int line = 0;
  int column = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  std::vector<std::string> targets;
  std::string attribute;
  std::vector<std::pair<ExprPtr, StmtList>> branches;
  StmtList body;
  StmtList else_body;
  std::string name;
  std::vector<Param> params;
};

}  // namespace tandem::jinja
