#include "model/jinja/lexer.h"

#include <algorithm>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "model/unicode.h"

namespace tandem::jinja {
namespace {

// Python's `\s` for the ASCII range, which is all the lexer's whitespace rules look at.
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string NormalizeNewlines(absl::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  // keep_trailing_newline=False: one final newline is not part of the template.
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : source_(std::move(source)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < source_.size(); ++i) {
      if (source_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  absl::StatusOr<std::vector<Token>> Run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < source_.size()) {
      const size_t start = FindTagStart(pos);
      std::string text = source_.substr(pos, start - pos);
      if (start == source_.size()) {
        EmitText(std::move(text), pos);
        break;
      }
      const char kind = source_[start + 1];  // '{', '%' or '#'
      const char modifier = start + 2 < source_.size() ? source_[start + 2] : '\0';
      if (modifier == '-') {
        while (!text.empty() && IsSpace(text.back())) text.pop_back();
      } else if (modifier != '+' && kind != '{') {
        // lstrip_blocks: only when nothing but spaces and tabs precede the tag on its line.
        const size_t line_pos = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        if (line_pos > 0 || line_starting) {
          const bool blank = std::all_of(text.begin() + line_pos, text.end(),
                                         [](char c) { return IsSpace(c) && c != '\n'; });
          if (blank) text.resize(line_pos);
        }
      }
      EmitText(std::move(text), pos);
      size_t body = start + 2 + ((modifier == '-' || modifier == '+') ? 1 : 0);
      size_t end = 0;
      if (kind == '#') {
        auto comment_end = SkipComment(body);
        if (!comment_end.ok()) return comment_end.status();
        end = *comment_end;
      } else {
        const bool is_block = kind == '%';
        if (is_block) {
          auto raw_end = TryRaw(body, start);
          if (!raw_end.ok()) return raw_end.status();
          if (*raw_end != 0) {
            pos = *raw_end;
            line_starting = pos > 0 && source_[pos - 1] == '\n';
            continue;
          }
        }
        Push(is_block ? TokenType::kBlockBegin : TokenType::kVariableBegin, "", start);
        auto tag_end = LexTag(body, is_block, start);
        if (!tag_end.ok()) return tag_end.status();
        end = *tag_end;
      }
      line_starting = end > 0 && source_[end - 1] == '\n';
      pos = end;
    }
    Push(TokenType::kEnd, "", source_.size());
    return std::move(tokens_);
  }

 private:
  size_t FindTagStart(size_t pos) const {
    while (true) {
      const size_t brace = source_.find('{', pos);
      if (brace == std::string::npos || brace + 1 >= source_.size()) return source_.size();
      const char next = source_[brace + 1];
      if (next == '{' || next == '%' || next == '#') return brace;
      pos = brace + 1;
    }
  }

  void EmitText(std::string text, size_t offset) {
    if (!text.empty()) Push(TokenType::kText, std::move(text), offset);
  }

  void Push(TokenType type, std::string text, size_t offset) {
    Token token;
    token.type = type;
    token.text = std::move(text);
    Locate(offset, &token.line, &token.column);
    tokens_.push_back(std::move(token));
  }

  void Locate(size_t offset, int* line, int* column) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t index = static_cast<size_t>(it - line_starts_.begin()) - 1;
    *line = static_cast<int>(index) + 1;
    *column = static_cast<int>(offset - line_starts_[index]) + 1;
  }

  absl::Status ErrorAt(size_t offset, absl::string_view message) const {
    int line = 0;
    int column = 0;
    Locate(offset, &line, &column);
    return absl::InvalidArgumentError(
        absl::StrFormat("template syntax error at line %d, column %d: %s", line, column, message));
  }

  // Skips whitespace after a closing tag: all of it after a `-` marker, else (trim_blocks)
  // a single newline after `%}` or `#}`.
  size_t AfterTagEnd(size_t pos, char modifier, bool block_like) const {
    if (modifier == '-') {
      while (pos < source_.size() && IsSpace(source_[pos])) ++pos;
    } else if (modifier != '+' && block_like && pos < source_.size() && source_[pos] == '\n') {
      ++pos;
    }
    return pos;
  }

  absl::StatusOr<size_t> SkipComment(size_t body) const {
    const size_t close = source_.find("#}", body);
    if (close == std::string::npos) return ErrorAt(body, "unterminated comment, missing '#}'");
    const char modifier = close > body ? source_[close - 1] : '\0';
    return AfterTagEnd(close + 2, modifier == '-' ? '-' : '\0', true);
  }

  // `{% raw %}...{% endraw %}`: the body is text, not template. Returns the position after
  // the closing tag, or 0 when the block is not `raw`.
  absl::StatusOr<size_t> TryRaw(size_t body, size_t start) {
    size_t p = body;
    while (p < source_.size() && IsSpace(source_[p])) ++p;
    if (source_.compare(p, 3, "raw") != 0) return 0;
    p += 3;
    while (p < source_.size() && IsSpace(source_[p])) ++p;
    char open_modifier = '\0';
    if (p < source_.size() && (source_[p] == '-' || source_[p] == '+'))
      open_modifier = source_[p++];
    if (source_.compare(p, 2, "%}") != 0) return 0;
    size_t text_begin = AfterTagEnd(p + 2, open_modifier, true);
    size_t search = text_begin;
    while (true) {
      const size_t tag = source_.find("{%", search);
      if (tag == std::string::npos) return ErrorAt(start, "unterminated raw block");
      size_t q = tag + 2;
      const char close_modifier = q < source_.size() ? source_[q] : '\0';
      if (close_modifier == '-' || close_modifier == '+') ++q;
      while (q < source_.size() && IsSpace(source_[q])) ++q;
      if (source_.compare(q, 6, "endraw") != 0) {
        search = tag + 2;
        continue;
      }
      q += 6;
      while (q < source_.size() && IsSpace(source_[q])) ++q;
      char end_modifier = '\0';
      if (q < source_.size() && (source_[q] == '-' || source_[q] == '+'))
        end_modifier = source_[q++];
      if (source_.compare(q, 2, "%}") != 0) return ErrorAt(tag, "malformed endraw tag");
      std::string text = source_.substr(text_begin, tag - text_begin);
      if (close_modifier == '-') {
        while (!text.empty() && IsSpace(text.back())) text.pop_back();
      }
      EmitText(std::move(text), text_begin);
      return AfterTagEnd(q + 2, end_modifier, true);
    }
  }

  // Lexes the inside of `{{ ... }}` or `{% ... %}` and returns the position after the tag.
  // A closing delimiter only counts outside brackets, so `{{ {'a': {}} }}` works.
  absl::StatusOr<size_t> LexTag(size_t pos, bool is_block, size_t tag_start) {
    const char closer = is_block ? '%' : '}';
    std::vector<char> brackets;
    while (true) {
      while (pos < source_.size() && IsSpace(source_[pos])) ++pos;
      if (pos >= source_.size()) {
        return ErrorAt(tag_start, is_block ? "unterminated block tag, missing '%}'"
                                           : "unterminated expression, missing '}}'");
      }
      if (brackets.empty()) {
        char modifier = '\0';
        size_t p = pos;
        if ((source_[p] == '-' || source_[p] == '+') && p + 2 < source_.size() + 0 &&
            source_[p + 1] == closer && source_[p + 2] == '}') {
          modifier = source_[p];
          ++p;
        }
        if (p + 1 < source_.size() && source_[p] == closer && source_[p + 1] == '}' &&
            (modifier != '+' || is_block)) {
          Push(is_block ? TokenType::kBlockEnd : TokenType::kVariableEnd, "", pos);
          return AfterTagEnd(p + 2, modifier, is_block);
        }
      }
      const char c = source_[pos];
      if (absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t end = pos;
        while (end < source_.size() &&
               (absl::ascii_isalnum(static_cast<unsigned char>(source_[end])) ||
                source_[end] == '_')) {
          ++end;
        }
        Push(TokenType::kName, source_.substr(pos, end - pos), pos);
        pos = end;
      } else if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
        auto next = LexNumber(pos);
        if (!next.ok()) return next.status();
        pos = *next;
      } else if (c == '\'' || c == '"') {
        auto next = LexString(pos);
        if (!next.ok()) return next.status();
        pos = *next;
      } else {
        static constexpr const char* kOperators[] = {
            "//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
            ">",  "(",  ")",  "[",  "]",  "{",  "}", ",", ".", ":", "|", "=", ";"};
        const char* matched = nullptr;
        for (const char* op : kOperators) {
          if (source_.compare(pos, std::char_traits<char>::length(op), op) == 0) {
            matched = op;
            break;
          }
        }
        if (matched == nullptr) {
          return ErrorAt(pos, absl::StrFormat("unexpected character '%c'", c));
        }
        const std::string op = matched;
        if (op == "(" || op == "[" || op == "{") {
          brackets.push_back(op[0]);
        } else if (op == ")" || op == "]" || op == "}") {
          const char open = op == ")" ? '(' : op == "]" ? '[' : '{';
          if (brackets.empty() || brackets.back() != open) {
            return ErrorAt(pos, absl::StrFormat("unexpected '%s'", op));
          }
          brackets.pop_back();
        }
        Push(TokenType::kOperator, op, pos);
        pos += op.size();
      }
    }
  }

  absl::StatusOr<size_t> LexNumber(size_t pos) {
    size_t end = pos;
    auto digits = [&] {
      while (
          end < source_.size() &&
          (absl::ascii_isdigit(static_cast<unsigned char>(source_[end])) || source_[end] == '_')) {
        ++end;
      }
    };
    digits();
    bool is_float = false;
    if (end + 1 < source_.size() && source_[end] == '.' &&
        absl::ascii_isdigit(static_cast<unsigned char>(source_[end + 1]))) {
      is_float = true;
      ++end;
      digits();
    }
    if (end < source_.size() && (source_[end] == 'e' || source_[end] == 'E')) {
      size_t e = end + 1;
      if (e < source_.size() && (source_[e] == '+' || source_[e] == '-')) ++e;
      if (e < source_.size() && absl::ascii_isdigit(static_cast<unsigned char>(source_[e]))) {
        is_float = true;
        end = e;
        digits();
      }
    }
    std::string text = source_.substr(pos, end - pos);
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    Token token;
    Locate(pos, &token.line, &token.column);
    token.text = text;
    if (is_float) {
      token.type = TokenType::kFloat;
      token.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      token.type = TokenType::kInt;
      errno = 0;
      token.int_value = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) return ErrorAt(pos, "integer literal out of range");
    }
    tokens_.push_back(std::move(token));
    return end;
  }

  // Decodes a string literal with Python's unicode-escape rules, as Jinja2 does.
  absl::StatusOr<size_t> LexString(size_t pos) {
    const char quote = source_[pos];
    std::string value;
    size_t p = pos + 1;
    while (true) {
      if (p >= source_.size()) return ErrorAt(pos, "unterminated string literal");
      const char c = source_[p];
      if (c == quote) break;
      if (c != '\\' || p + 1 >= source_.size()) {
        value += c;
        ++p;
        continue;
      }
      const char e = source_[p + 1];
      p += 2;
      auto hex = [&](int count) -> absl::StatusOr<uint32_t> {
        if (p + count > source_.size()) return ErrorAt(p, "truncated escape in string literal");
        uint32_t cp = 0;
        for (int i = 0; i < count; ++i) {
          const char h = source_[p + i];
          if (!absl::ascii_isxdigit(static_cast<unsigned char>(h))) {
            return ErrorAt(p, "bad hex escape in string literal");
          }
          cp = cp * 16 + (absl::ascii_isdigit(static_cast<unsigned char>(h))
                              ? h - '0'
                              : absl::ascii_tolower(static_cast<unsigned char>(h)) - 'a' + 10);
        }
        p += count;
        return cp;
      };
      switch (e) {
        case 'n':
          value += '\n';
          break;
        case 't':
          value += '\t';
          break;
        case 'r':
          value += '\r';
          break;
        case '\\':
          value += '\\';
          break;
        case '\'':
          value += '\'';
          break;
        case '"':
          value += '"';
          break;
        case 'a':
          value += '\a';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'v':
          value += '\v';
          break;
        case '\n':
          break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          auto cp = hex(e == 'x' ? 2 : e == 'u' ? 4 : 8);
          if (!cp.ok()) return cp.status();
          if (*cp > 0x10FFFF) return ErrorAt(p, "escape beyond U+10FFFF in string literal");
          AppendUtf8(*cp, &value);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = e - '0';
            for (int i = 0; i < 2 && p < source_.size() && source_[p] >= '0' && source_[p] <= '7';
                 ++i) {
              cp = cp * 8 + (source_[p++] - '0');
            }
            AppendUtf8(cp, &value);
          } else {
            // Python keeps unknown escapes as written.
            value += '\\';
            value += e;
          }
      }
    }
    Push(TokenType::kString, std::move(value), pos);
    return p + 1;
  }

  std::string source_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

}  // namespace

absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view source) {
  return Lexer(NormalizeNewlines(source)).Run();
}

}  // namespace tandem::jinja
