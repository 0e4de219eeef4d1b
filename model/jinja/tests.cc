#include "model/jinja/tests.h"

#include "absl/strings/str_format.h"
#include "model/jinja/errors.h"
#include "model/jinja/value_ops.h"

namespace tandem::jinja {
namespace {

absl::StatusOr<Value> RequiredArg(const CallArgs& args, absl::string_view test) {
  const Value* other = args.Get(0, "other");
  if (other == nullptr) other = args.Get(0, "value");
  if (other == nullptr) {
    return TypeError(absl::StrFormat("test '%s' needs an argument", test));
  }
  return *other;
}

absl::StatusOr<bool> IntegerParity(const Value& value, bool want_odd) {
  if (!value.is_int() && !value.is_bool()) {
    if (value.is_undefined()) return UndefinedError(value.undefined_name());
    return TypeError(absl::StrFormat("unsupported operand type for %%: '%s'", value.TypeName()));
  }
  const int64_t i = value.is_bool() ? value.bool_value() : value.int_value();
  return ((i % 2) != 0) == want_odd;
}

}  // namespace

absl::StatusOr<bool> ApplyTest(absl::string_view name, const Value& value, const CallArgs& args) {
  if (name == "defined") return !value.is_undefined();
  if (name == "undefined") return value.is_undefined();
  if (name == "none") return value.is_none();
  if (name == "boolean") return value.is_bool();
  if (name == "true") return value.is_bool() && value.bool_value();
  if (name == "false") return value.is_bool() && !value.bool_value();
  if (name == "integer") return value.is_int();
  if (name == "float") return value.is_float();
  if (name == "number") return value.is_number();  // bool is a Number in Python
  if (name == "string") return value.is_string();
  if (name == "mapping") return value.is_dict();
  if (name == "iterable") return value.is_iterable();
  if (name == "sequence") return value.is_string() || value.is_list() || value.is_dict();
  if (name == "callable") return value.is_callable();
  if (name == "lower" || name == "upper") {
    if (!value.is_string()) return false;
    bool any_letter = false;
    for (char c : value.string_value()) {
      if (c >= 'a' && c <= 'z') {
        if (name == "upper") return false;
        any_letter = true;
      } else if (c >= 'A' && c <= 'Z') {
        if (name == "lower") return false;
        any_letter = true;
      }
    }
    return any_letter;
  }
  if (name == "odd") return IntegerParity(value, true);
  if (name == "even") return IntegerParity(value, false);
  if (name == "divisibleby") {
    auto divisor = RequiredArg(args, name);
    if (!divisor.ok()) return divisor.status();
    auto remainder = BinaryOp("%", value, *divisor, 1);
    if (!remainder.ok()) return remainder.status();
    return remainder->Equals(Value::Int(0));
  }
  static constexpr struct {
    const char* test;
    const char* op;
  } kComparisons[] = {{"eq", "=="}, {"equalto", "=="}, {"==", "=="},      {"ne", "!="},
                      {"!=", "!="}, {"lt", "<"},       {"lessthan", "<"}, {"<", "<"},
                      {"le", "<="}, {"<=", "<="},      {"gt", ">"},       {"greaterthan", ">"},
                      {">", ">"},   {"ge", ">="},      {">=", ">="},      {"in", "in"}};
  for (const auto& comparison : kComparisons) {
    if (name == comparison.test) {
      auto other = RequiredArg(args, name);
      if (!other.ok()) return other.status();
      return CompareOp(comparison.op, value, *other);
    }
  }
  if (name == "sameas") {
    auto other = RequiredArg(args, name);
    if (!other.ok()) return other.status();
    // Python identity; equal kind and value is the closest this value model can tell.
    return value.kind() == other->kind() && value.Equals(*other);
  }
  return TypeError(absl::StrFormat("no test named '%s'", name));
}

}  // namespace tandem::jinja
