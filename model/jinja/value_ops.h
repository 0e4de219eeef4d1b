// Python semantics of the operations Jinja2 delegates to Python: arithmetic, comparison,
// membership, attribute and item lookup (with Jinja2's fallback between the two), slicing,
// iteration and len(). Strings are indexed by codepoint, as Python str is.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/jinja/value.h"

namespace tandem::jinja {

// `+ - * / // % **` and `~`. Results larger than `max_size` bytes or elements are refused.
absl::StatusOr<Value> BinaryOp(absl::string_view op, const Value& lhs, const Value& rhs,
                               size_t max_size);
// `== != < <= > >= in` and `not in`.
absl::StatusOr<bool> CompareOp(absl::string_view op, const Value& lhs, const Value& rhs);
absl::StatusOr<bool> Contains(const Value& container, const Value& item);
// Unary `-` and `+`.
absl::StatusOr<Value> Negate(const Value& operand);

// `obj.name`: for dicts, a method of that name wins (as in Python), then the key; a missing
// attribute is undefined, but any lookup on undefined itself is an UndefinedError.
absl::StatusOr<Value> GetAttr(const Value& object, absl::string_view name);
// `obj[key]`: the item, else (string keys) the attribute, else undefined.
absl::StatusOr<Value> GetItem(const Value& object, const Value& key);
// `obj[start:stop:step]` with None/undefined for an omitted part.
absl::StatusOr<Value> Slice(const Value& object, const Value& start, const Value& stop,
                            const Value& step);

// The items a `for` loop visits: elements, dict keys, or one-codepoint strings. Undefined
// iterates as empty; None and numbers are TypeErrors.
absl::StatusOr<ValueList> Iterate(const Value& value);
// len(x); undefined has length 0.
absl::StatusOr<int64_t> Length(const Value& value);

// UTF-8 <-> codepoints, for codepoint-wise string operations.
std::vector<uint32_t> ToCodepoints(absl::string_view text);
std::string FromCodepoints(const std::vector<uint32_t>& codepoints, size_t begin, size_t end);

}  // namespace tandem::jinja
