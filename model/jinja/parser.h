// Builds the statement tree from the lexer's tokens, with Jinja2's grammar and operator
// precedence. Errors name the line and column of the offending token.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "model/jinja/ast.h"
#include "model/jinja/lexer.h"

namespace tandem::jinja {

// Nesting deeper than this (brackets, blocks) is refused, so a hostile template cannot
// exhaust the stack while parsing.
inline constexpr int kMaxParseDepth = 200;

absl::StatusOr<StmtList> Parse(const std::vector<Token>& tokens);

}  // namespace tandem::jinja
