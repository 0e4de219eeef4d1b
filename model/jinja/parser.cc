#include "model/jinja/parser.h"

#include <initializer_list>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"

namespace tandem::jinja {
namespace {

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : tokens_(tokens) {}

  absl::StatusOr<StmtList> ParseTemplate() {
    TANDEM_ASSIGN_OR_RETURN(StmtList body, ParseBody({}));
    if (Peek().type != TokenType::kEnd) return Error(Peek(), "unexpected tag");
    return body;
  }

 private:
  // Guards recursion: one per nested body or expression level.
  class DepthGuard {
   public:
    explicit DepthGuard(Parser* parser) : parser_(parser) { ++parser_->depth_; }
    ~DepthGuard() { --parser_->depth_; }
    bool exceeded() const { return parser_->depth_ > kMaxParseDepth; }

   private:
    Parser* parser_;
  };

  const Token& Peek(size_t ahead = 0) const {
    const size_t index = std::min(pos_ + ahead, tokens_.size() - 1);
    return tokens_[index];
  }
  const Token& Next() {
    const Token& token = Peek();
    if (pos_ < tokens_.size() - 1) ++pos_;
    return token;
  }
  bool IsOp(absl::string_view op, size_t ahead = 0) const {
    return Peek(ahead).type == TokenType::kOperator && Peek(ahead).text == op;
  }
  bool IsName(absl::string_view name, size_t ahead = 0) const {
    return Peek(ahead).type == TokenType::kName && Peek(ahead).text == name;
  }
  bool SkipOp(absl::string_view op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(absl::string_view name) {
    if (!IsName(name)) return false;
    Next();
    return true;
  }

  static std::string Describe(const Token& token) {
    switch (token.type) {
      case TokenType::kText:
        return "template text";
      case TokenType::kVariableBegin:
        return "'{{'";
      case TokenType::kVariableEnd:
        return "'}}'";
      case TokenType::kBlockBegin:
        return "'{%'";
      case TokenType::kBlockEnd:
        return "'%}'";
      case TokenType::kString:
        return "string literal";
      case TokenType::kInt:
      case TokenType::kFloat:
        return "number '" + token.text + "'";
      case TokenType::kEnd:
        return "end of template";
      default:
        return "'" + token.text + "'";
    }
  }

  absl::Status Error(const Token& token, absl::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrFormat("template syntax error at line %d, column %d: %s (at %s)", token.line,
                        token.column, message, Describe(token)));
  }

  absl::Status ExpectOp(absl::string_view op) {
    if (!SkipOp(op)) return Error(Peek(), absl::StrFormat("expected '%s'", op));
    return absl::OkStatus();
  }
  absl::Status ExpectBlockEnd() {
    if (Peek().type != TokenType::kBlockEnd) return Error(Peek(), "expected end of tag '%}'");
    Next();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectName() {
    if (Peek().type != TokenType::kName) return Error(Peek(), "expected a name");
    return Next().text;
  }

  ExprPtr MakeExpr(ExprKind kind, const Token& at) {
    auto expr = std::make_unique<Expr>();
    expr->kind = kind;
    expr->line = at.line;
    expr->column = at.column;
    return expr;
  }
  StmtPtr MakeStmt(StmtKind kind, const Token& at) {
    auto stmt = std::make_unique<Stmt>();
    stmt->kind = kind;
    stmt->line = at.line;
    stmt->column = at.column;
    return stmt;
  }

  // ---- statements ----

  // Parses until `{% NAME` with NAME in `end_names` (left unconsumed) or the end of input.
  absl::StatusOr<StmtList> ParseBody(std::initializer_list<absl::string_view> end_names) {
    DepthGuard guard(this);
    if (guard.exceeded()) return Error(Peek(), "blocks nested too deeply");
    StmtList body;
    while (true) {
      const Token& token = Peek();
      switch (token.type) {
        case TokenType::kEnd:
          if (end_names.size() != 0) {
            std::vector<std::string> names;
            for (absl::string_view n : end_names) names.push_back("'" + std::string(n) + "'");
            return Error(token, absl::StrFormat("unexpected end of template, expected %s",
                                                absl::StrJoin(names, " or ")));
          }
          return body;
        case TokenType::kText: {
          auto stmt = MakeStmt(StmtKind::kText, token);
          stmt->text = Next().text;
          body.push_back(std::move(stmt));
          break;
        }
        case TokenType::kVariableBegin: {
          auto stmt = MakeStmt(StmtKind::kOutput, Next());
          TANDEM_ASSIGN_OR_RETURN(stmt->expr, ParseTuple(true));
          if (Peek().type != TokenType::kVariableEnd) {
            return Error(Peek(), "expected end of expression '}}'");
          }
          Next();
          body.push_back(std::move(stmt));
          break;
        }
        case TokenType::kBlockBegin: {
          const Token& name = Peek(1);
          if (name.type == TokenType::kName) {
            for (absl::string_view end : end_names) {
              if (name.text == end) return body;
            }
          }
          TANDEM_ASSIGN_OR_RETURN(StmtPtr stmt, ParseStatement());
          body.push_back(std::move(stmt));
          break;
        }
        default:
          return Error(token, "unexpected token");
      }
    }
  }

  // Consumes `{% name %}` for an end tag that ParseBody stopped at.
  absl::Status ConsumeTag(absl::string_view name) {
    Next();  // {%
    if (!SkipName(name)) return Error(Peek(), absl::StrFormat("expected '%s'", name));
    return ExpectBlockEnd();
  }

  absl::StatusOr<StmtPtr> ParseStatement() {
    const Token& begin = Next();  // {%
    if (Peek().type != TokenType::kName) return Error(Peek(), "expected a tag name");
    const Token& tag = Next();
    const std::string& name = tag.text;
    if (name == "if") return ParseIf(begin);
    if (name == "for") return ParseFor(begin);
    if (name == "set") return ParseSet(begin);
    if (name == "macro") return ParseMacro(begin);
    if (name == "call") return ParseCallBlock(begin);
    if (name == "filter") return ParseFilterBlock(begin);
    if (name == "generation") {
      auto stmt = MakeStmt(StmtKind::kScope, begin);
      TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());
      TANDEM_ASSIGN_OR_RETURN(stmt->body, ParseBody({"endgeneration"}));
      TANDEM_RETURN_IF_ERROR(ConsumeTag("endgeneration"));
      return stmt;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) return Error(tag, absl::StrFormat("'%s' outside a loop", name));
      auto stmt = MakeStmt(name == "break" ? StmtKind::kBreak : StmtKind::kContinue, begin);
      TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());
      return stmt;
    }
    if (name == "include" || name == "import" || name == "from" || name == "extends" ||
        name == "block") {
      return Error(tag, absl::StrFormat("'%s' is not supported in chat templates", name));
    }
    return Error(tag, absl::StrFormat("unknown or misplaced tag '%s'", name));
  }

  absl::StatusOr<StmtPtr> ParseIf(const Token& begin) {
    auto stmt = MakeStmt(StmtKind::kIf, begin);
    while (true) {
      TANDEM_ASSIGN_OR_RETURN(ExprPtr condition, ParseTuple(true));
      TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());
      TANDEM_ASSIGN_OR_RETURN(StmtList body, ParseBody({"elif", "else", "endif"}));
      stmt->branches.emplace_back(std::move(condition), std::move(body));
      Next();  // {%
      const std::string tag = Next().text;
      if (tag == "elif") continue;
      if (tag == "else") {
        TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());
        TANDEM_ASSIGN_OR_RETURN(stmt->else_body, ParseBody({"endif"}));
        TANDEM_RETURN_IF_ERROR(ConsumeTag("endif"));
        return stmt;
      }
      TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());  // endif
      return stmt;
    }
  }

  // `a` or `a, b` or `(a, b)`.
  absl::StatusOr<std::vector<std::string>> ParseTargetNames() {
    std::vector<std::string> names;
    const bool parenthesized = SkipOp("(");
    while (true) {
      TANDEM_ASSIGN_OR_RETURN(std::string name, ExpectName());
      names.push_back(std::move(name));
      if (!SkipOp(",")) break;
      if (Peek().type != TokenType::kName) break;  // trailing comma
    }
    if (parenthesized) TANDEM_RETURN_IF_ERROR(ExpectOp(")"));
    return names;
  }

  absl::StatusOr<StmtPtr> ParseFor(const Token& begin) {
    auto stmt = MakeStmt(StmtKind::kFor, begin);
    TANDEM_ASSIGN_OR_RETURN(stmt->targets, ParseTargetNames());
    if (!SkipName("in")) return Error(Peek(), "expected 'in' in for loop");
    TANDEM_ASSIGN_OR_RETURN(stmt->expr, ParseTuple(false));
    if (SkipName("if")) {
      TANDEM_ASSIGN_OR_RETURN(stmt->condition, ParseExpression(true));
    }
    if (IsName("recursive")) return Error(Peek(), "recursive loops are not supported");
    TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());
    ++loop_depth_;
    auto body = ParseBody({"else", "endfor"});
    --loop_depth_;
    if (!body.ok()) return body.status();
    stmt->body = std::move(*body);
    Next();  // {%
    if (Next().text == "else") {
      TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());
      TANDEM_ASSIGN_OR_RETURN(stmt->else_body, ParseBody({"endfor"}));
      TANDEM_RETURN_IF_ERROR(ConsumeTag("endfor"));
      return stmt;
    }
    TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());
    return stmt;
  }

  absl::StatusOr<StmtPtr> ParseSet(const Token& begin) {
    auto stmt = MakeStmt(StmtKind::kSet, begin);
    if (Peek().type == TokenType::kName && IsOp(".", 1)) {
      stmt->targets.push_back(Next().text);
      Next();  // .
      TANDEM_ASSIGN_OR_RETURN(stmt->attribute, ExpectName());
    } else {
      TANDEM_ASSIGN_OR_RETURN(stmt->targets, ParseTargetNames());
    }
    if (SkipOp("=")) {
      TANDEM_ASSIGN_OR_RETURN(stmt->expr, ParseTuple(true));
      TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());
      return stmt;
    }
    // Block form: {% set x %}...{% endset %}, optionally filtered: {% set x | trim %}.
    if (stmt->targets.size() != 1 || !stmt->attribute.empty()) {
      return Error(Peek(), "expected '=' in set");
    }
    stmt->kind = StmtKind::kSetBlock;
    if (IsOp("|")) {
      TANDEM_ASSIGN_OR_RETURN(stmt->expr, ParseFilterChain(nullptr));
    }
    TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());
    TANDEM_ASSIGN_OR_RETURN(stmt->body, ParseBody({"endset"}));
    TANDEM_RETURN_IF_ERROR(ConsumeTag("endset"));
    return stmt;
  }

  absl::StatusOr<std::vector<Param>> ParseParams() {
    std::vector<Param> params;
    TANDEM_RETURN_IF_ERROR(ExpectOp("("));
    while (!IsOp(")")) {
      if (!params.empty()) TANDEM_RETURN_IF_ERROR(ExpectOp(","));
      if (IsOp(")")) break;
      Param param;
      TANDEM_ASSIGN_OR_RETURN(param.name, ExpectName());
      if (SkipOp("=")) {
        TANDEM_ASSIGN_OR_RETURN(param.default_value, ParseExpression(true));
      } else if (!params.empty() && params.back().default_value != nullptr) {
        return Error(Peek(), "non-default argument follows default argument");
      }
      params.push_back(std::move(param));
    }
    Next();  // )
    return params;
  }

  absl::StatusOr<StmtPtr> ParseMacro(const Token& begin) {
    auto stmt = MakeStmt(StmtKind::kMacro, begin);
    TANDEM_ASSIGN_OR_RETURN(stmt->name, ExpectName());
    TANDEM_ASSIGN_OR_RETURN(stmt->params, ParseParams());
    TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());
    // A loop outside does not make `break` legal inside the macro body.
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    auto body = ParseBody({"endmacro"});
    loop_depth_ = saved_loop_depth;
    if (!body.ok()) return body.status();
    stmt->body = std::move(*body);
    Next();  // {%
    Next();  // endmacro
    if (Peek().type == TokenType::kName && Peek().text == stmt->name) Next();
    TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());
    return stmt;
  }

  absl::StatusOr<StmtPtr> ParseCallBlock(const Token& begin) {
    auto stmt = MakeStmt(StmtKind::kCallBlock, begin);
    if (IsOp("(")) {
      TANDEM_ASSIGN_OR_RETURN(stmt->params, ParseParams());
    }
    TANDEM_ASSIGN_OR_RETURN(stmt->expr, ParseExpression(true));
    if (stmt->expr->kind != ExprKind::kCall) return Error(Peek(), "expected a call in call block");
    TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());
    TANDEM_ASSIGN_OR_RETURN(stmt->body, ParseBody({"endcall"}));
    TANDEM_RETURN_IF_ERROR(ConsumeTag("endcall"));
    return stmt;
  }

  absl::StatusOr<StmtPtr> ParseFilterBlock(const Token& begin) {
    auto stmt = MakeStmt(StmtKind::kFilterBlock, begin);
    // The first filter has no leading '|'; parse it as if it had one.
    TANDEM_ASSIGN_OR_RETURN(stmt->expr, ParseOneFilter(nullptr));
    if (IsOp("|")) {
      TANDEM_ASSIGN_OR_RETURN(stmt->expr, ParseFilterChain(std::move(stmt->expr)));
    }
    TANDEM_RETURN_IF_ERROR(ExpectBlockEnd());
    TANDEM_ASSIGN_OR_RETURN(stmt->body, ParseBody({"endfilter"}));
    TANDEM_RETURN_IF_ERROR(ConsumeTag("endfilter"));
    return stmt;
  }

  // ---- expressions (lowest precedence first, as in Jinja2's parser) ----

  // `a, b` becomes a tuple; a single expression stays itself.
  absl::StatusOr<ExprPtr> ParseTuple(bool with_condexpr) {
    const Token& start = Peek();
    TANDEM_ASSIGN_OR_RETURN(ExprPtr first, ParseExpression(with_condexpr));
    if (!IsOp(",")) return first;
    auto tuple = MakeExpr(ExprKind::kTuple, start);
    tuple->items.push_back(std::move(first));
    while (SkipOp(",")) {
      if (Peek().type == TokenType::kVariableEnd || Peek().type == TokenType::kBlockEnd ||
          IsOp(")")) {
        break;
      }
      TANDEM_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(with_condexpr));
      tuple->items.push_back(std::move(item));
    }
    return tuple;
  }

  absl::StatusOr<ExprPtr> ParseExpression(bool with_condexpr) {
    DepthGuard guard(this);
    if (guard.exceeded()) return Error(Peek(), "expression nested too deeply");
    if (!with_condexpr) return ParseOr();
    const Token& start = Peek();
    TANDEM_ASSIGN_OR_RETURN(ExprPtr expr, ParseOr());
    while (SkipName("if")) {
      auto cond = MakeExpr(ExprKind::kCondExpr, start);
      TANDEM_ASSIGN_OR_RETURN(cond->b, ParseOr());
      if (SkipName("else")) {
        TANDEM_ASSIGN_OR_RETURN(cond->c, ParseExpression(true));
      }
      cond->a = std::move(expr);
      expr = std::move(cond);
    }
    return expr;
  }

  absl::StatusOr<ExprPtr> ParseBinaryChain(absl::StatusOr<ExprPtr> (Parser::*operand)(),
                                           std::initializer_list<absl::string_view> ops,
                                           bool names) {
    TANDEM_ASSIGN_OR_RETURN(ExprPtr lhs, (this->*operand)());
    while (true) {
      const Token& token = Peek();
      bool matched = false;
      for (absl::string_view op : ops) {
        if (names ? IsName(op) : IsOp(op)) matched = true;
      }
      if (!matched) return lhs;
      Next();
      auto binary = MakeExpr(ExprKind::kBinary, token);
      binary->name = token.text;
      TANDEM_ASSIGN_OR_RETURN(binary->b, (this->*operand)());
      binary->a = std::move(lhs);
      lhs = std::move(binary);
    }
  }

  absl::StatusOr<ExprPtr> ParseOr() { return ParseBinaryChain(&Parser::ParseAnd, {"or"}, true); }
  absl::StatusOr<ExprPtr> ParseAnd() { return ParseBinaryChain(&Parser::ParseNot, {"and"}, true); }

  absl::StatusOr<ExprPtr> ParseNot() {
    if (IsName("not")) {
      DepthGuard guard(this);
      if (guard.exceeded()) return Error(Peek(), "expression nested too deeply");
      auto unary = MakeExpr(ExprKind::kUnary, Next());
      unary->name = "not";
      TANDEM_ASSIGN_OR_RETURN(unary->a, ParseNot());
      return unary;
    }
    return ParseCompare();
  }

  absl::StatusOr<ExprPtr> ParseCompare() {
    const Token& start = Peek();
    TANDEM_ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
    ExprPtr compare;
    while (true) {
      std::string op;
      if (Peek().type == TokenType::kOperator &&
          (Peek().text == "==" || Peek().text == "!=" || Peek().text == "<" ||
           Peek().text == "<=" || Peek().text == ">" || Peek().text == ">=")) {
        op = Next().text;
      } else if (IsName("in")) {
        Next();
        op = "in";
      } else if (IsName("not") && IsName("in", 1)) {
        Next();
        Next();
        op = "not in";
      } else {
        break;
      }
      if (compare == nullptr) {
        compare = MakeExpr(ExprKind::kCompare, start);
        compare->items.push_back(std::move(first));
      }
      TANDEM_ASSIGN_OR_RETURN(ExprPtr rhs, ParseMath1());
      compare->ops.push_back(std::move(op));
      compare->items.push_back(std::move(rhs));
    }
    return compare != nullptr ? std::move(compare) : std::move(first);
  }

  absl::StatusOr<ExprPtr> ParseMath1() {
    return ParseBinaryChain(&Parser::ParseConcat, {"+", "-"}, false);
  }
  absl::StatusOr<ExprPtr> ParseConcat() {
    return ParseBinaryChain(&Parser::ParseMath2, {"~"}, false);
  }
  absl::StatusOr<ExprPtr> ParseMath2() {
    return ParseBinaryChain(&Parser::ParsePow, {"*", "/", "//", "%"}, false);
  }
  absl::StatusOr<ExprPtr> ParsePow() {
    return ParseBinaryChain(&Parser::ParseUnaryWithFilters, {"**"}, false);
  }
  absl::StatusOr<ExprPtr> ParseUnaryWithFilters() { return ParseUnary(true); }

  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter) {
    DepthGuard guard(this);
    if (guard.exceeded()) return Error(Peek(), "expression nested too deeply");
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      auto unary = MakeExpr(ExprKind::kUnary, Peek());
      unary->name = Next().text;
      TANDEM_ASSIGN_OR_RETURN(unary->a, ParseUnary(false));
      node = std::move(unary);
    } else {
      TANDEM_ASSIGN_OR_RETURN(node, ParsePrimary());
    }
    TANDEM_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
    if (with_filter) {
      TANDEM_ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
    }
    return node;
  }

  absl::StatusOr<ExprPtr> ParsePrimary() {
    const Token& token = Peek();
    switch (token.type) {
      case TokenType::kName: {
        Next();
        auto expr = MakeExpr(ExprKind::kLiteral, token);
        if (token.text == "true" || token.text == "True") {
          expr->literal = Value::Bool(true);
        } else if (token.text == "false" || token.text == "False") {
          expr->literal = Value::Bool(false);
        } else if (token.text == "none" || token.text == "None") {
          expr->literal = Value::None();
        } else {
          expr->kind = ExprKind::kName;
          expr->name = token.text;
        }
        return expr;
      }
      case TokenType::kString: {
        // Adjacent literals concatenate: "a" "b" is "ab".
        std::string text = Next().text;
        while (Peek().type == TokenType::kString) text += Next().text;
        auto expr = MakeExpr(ExprKind::kLiteral, token);
        expr->literal = Value::String(std::move(text));
        return expr;
      }
      case TokenType::kInt: {
        auto expr = MakeExpr(ExprKind::kLiteral, Next());
        expr->literal = Value::Int(token.int_value);
        return expr;
      }
      case TokenType::kFloat: {
        auto expr = MakeExpr(ExprKind::kLiteral, Next());
        expr->literal = Value::Float(token.float_value);
        return expr;
      }
      case TokenType::kOperator:
        if (token.text == "(") {
          Next();
          if (SkipOp(")")) return MakeExpr(ExprKind::kTuple, token);
          TANDEM_ASSIGN_OR_RETURN(ExprPtr inner, ParseTuple(true));
          TANDEM_RETURN_IF_ERROR(ExpectOp(")"));
          return inner;
        }
        if (token.text == "[") {
          Next();
          auto list = MakeExpr(ExprKind::kList, token);
          while (!IsOp("]")) {
            if (!list->items.empty()) TANDEM_RETURN_IF_ERROR(ExpectOp(","));
            if (IsOp("]")) break;
            TANDEM_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
            list->items.push_back(std::move(item));
          }
          Next();
          return list;
        }
        if (token.text == "{") {
          Next();
          auto dict = MakeExpr(ExprKind::kDict, token);
          while (!IsOp("}")) {
            if (!dict->items.empty()) TANDEM_RETURN_IF_ERROR(ExpectOp(","));
            if (IsOp("}")) break;
            TANDEM_ASSIGN_OR_RETURN(ExprPtr key, ParseExpression(true));
            TANDEM_RETURN_IF_ERROR(ExpectOp(":"));
            TANDEM_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
            dict->items.push_back(std::move(key));
            dict->items.push_back(std::move(value));
          }
          Next();
          return dict;
        }
        break;
      default:
        break;
    }
    return Error(token, "expected an expression");
  }

  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node) {
    while (true) {
      const Token& token = Peek();
      if (IsOp(".")) {
        Next();
        auto attr = MakeExpr(ExprKind::kGetAttr, token);
        if (Peek().type == TokenType::kInt) {
          // `x.0` is `x[0]` in Jinja2.
          attr->kind = ExprKind::kGetItem;
          attr->b = MakeExpr(ExprKind::kLiteral, Peek());
          attr->b->literal = Value::Int(Next().int_value);
        } else {
          TANDEM_ASSIGN_OR_RETURN(attr->name, ExpectName());
        }
        attr->a = std::move(node);
        node = std::move(attr);
      } else if (IsOp("[")) {
        Next();
        TANDEM_ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node), token));
      } else if (IsOp("(")) {
        auto call = MakeExpr(ExprKind::kCall, token);
        TANDEM_ASSIGN_OR_RETURN(call->args, ParseCallArgs());
        call->a = std::move(node);
        node = std::move(call);
      } else {
        return node;
      }
    }
  }

  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr object, const Token& at) {
    ExprPtr parts[3];
    bool is_slice = false;
    for (int i = 0; i < 3; ++i) {
      if (!IsOp(":") && !IsOp("]")) {
        TANDEM_ASSIGN_OR_RETURN(parts[i], ParseExpression(true));
      }
      if (i < 2 && SkipOp(":")) {
        is_slice = true;
        continue;
      }
      break;
    }
    TANDEM_RETURN_IF_ERROR(ExpectOp("]"));
    if (!is_slice) {
      if (parts[0] == nullptr) return Error(at, "empty subscript");
      auto item = MakeExpr(ExprKind::kGetItem, at);
      item->a = std::move(object);
      item->b = std::move(parts[0]);
      return item;
    }
    auto slice = MakeExpr(ExprKind::kSlice, at);
    slice->a = std::move(object);
    for (auto& part : parts) slice->items.push_back(std::move(part));
    return slice;
  }

  absl::StatusOr<ArgList> ParseCallArgs() {
    TANDEM_RETURN_IF_ERROR(ExpectOp("("));
    ArgList args;
    bool first = true;
    while (!IsOp(")")) {
      if (!first) TANDEM_RETURN_IF_ERROR(ExpectOp(","));
      first = false;
      if (IsOp(")")) break;
      if (Peek().type == TokenType::kName && IsOp("=", 1)) {
        std::string name = Next().text;
        Next();  // =
        TANDEM_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        args.keyword.emplace_back(std::move(name), std::move(value));
      } else {
        if (!args.keyword.empty()) {
          return Error(Peek(), "positional argument follows keyword argument");
        }
        TANDEM_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        args.positional.push_back(std::move(value));
      }
    }
    Next();  // )
    return args;
  }

  // `| name(args)` once; `operand` may be null (filter blocks).
  absl::StatusOr<ExprPtr> ParseOneFilter(ExprPtr operand) {
    const Token& token = Peek();
    auto filter = MakeExpr(ExprKind::kFilter, token);
    TANDEM_ASSIGN_OR_RETURN(filter->name, ExpectName());
    while (SkipOp(".")) {  // dotted filter names
      TANDEM_ASSIGN_OR_RETURN(std::string part, ExpectName());
      filter->name += "." + part;
    }
    if (IsOp("(")) {
      TANDEM_ASSIGN_OR_RETURN(filter->args, ParseCallArgs());
    }
    filter->a = std::move(operand);
    return filter;
  }

  absl::StatusOr<ExprPtr> ParseFilterChain(ExprPtr operand) {
    while (SkipOp("|")) {
      TANDEM_ASSIGN_OR_RETURN(operand, ParseOneFilter(std::move(operand)));
    }
    return operand;
  }

  // Filters, tests and calls after a unary expression, in any order.
  absl::StatusOr<ExprPtr> ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (IsOp("|")) {
        TANDEM_ASSIGN_OR_RETURN(node, ParseFilterChain(std::move(node)));
      } else if (IsName("is")) {
        const Token& token = Next();
        auto test = MakeExpr(ExprKind::kTest, token);
        test->negated = SkipName("not");
        TANDEM_ASSIGN_OR_RETURN(test->name, ExpectName());
        while (SkipOp(".")) {
          TANDEM_ASSIGN_OR_RETURN(std::string part, ExpectName());
          test->name += "." + part;
        }
        const Token& next = Peek();
        if (IsOp("(")) {
          TANDEM_ASSIGN_OR_RETURN(test->args, ParseCallArgs());
        } else if ((next.type == TokenType::kName || next.type == TokenType::kString ||
                    next.type == TokenType::kInt || next.type == TokenType::kFloat || IsOp("[") ||
                    IsOp("{")) &&
                   !IsName("else") && !IsName("or") && !IsName("and") && !IsName("in") &&
                   !IsName("not") && !IsName("if")) {
          // `x is divisibleby 3`: a single argument without parentheses.
          if (IsName("is")) return Error(next, "you cannot chain multiple tests with 'is'");
          TANDEM_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
          TANDEM_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
          test->args.positional.push_back(std::move(arg));
        }
        test->a = std::move(node);
        node = std::move(test);
      } else if (IsOp("(")) {
        auto call = MakeExpr(ExprKind::kCall, Peek());
        TANDEM_ASSIGN_OR_RETURN(call->args, ParseCallArgs());
        call->a = std::move(node);
        node = std::move(call);
      } else {
        return node;
      }
    }
  }

  const std::vector<Token>& tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

absl::StatusOr<StmtList> Parse(const std::vector<Token>& tokens) {
  if (tokens.empty()) return StmtList();
  return Parser(tokens).ParseTemplate();
}

}  // namespace tandem::jinja
