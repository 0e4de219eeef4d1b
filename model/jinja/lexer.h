// Splits template source into tokens the way Jinja2's lexer does with transformers' settings:
// trim_blocks (a newline right after `%}` or `#}` is dropped), lstrip_blocks (spaces and tabs
// from the start of a line up to `{%` or `{#` are dropped), `-`/`+` whitespace markers,
// keep_trailing_newline=False, and "\r\n"/"\r" normalized to "\n". Comments disappear here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tandem::jinja {

enum class TokenType {
  kText,           // literal template text, already whitespace-trimmed
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,  // text holds the unescaped value
  kInt,
  kFloat,
  kOperator,  // text holds the operator: + - * / // % ** ~ == != < <= > >= = ( ) [ ] { } , . : |
  kEnd,
};

struct Token {
  TokenType type = TokenType::kEnd;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0.0;
  int line = 1;  // 1-based position of the token's first character in the source
  int column = 1;
};

absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view source);

}  // namespace tandem::jinja
