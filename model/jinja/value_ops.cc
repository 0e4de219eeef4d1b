#include "model/jinja/value_ops.h"

#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/jinja/errors.h"
#include "model/jinja/methods.h"
#include "model/unicode.h"

namespace tandem::jinja {
namespace {

bool IsInteger(const Value& v) { return v.is_int() || v.is_bool(); }
int64_t IntOf(const Value& v) { return v.is_bool() ? (v.bool_value() ? 1 : 0) : v.int_value(); }

absl::Status UnsupportedOperands(absl::string_view op, const Value& lhs, const Value& rhs) {
  return TypeError(absl::StrFormat("unsupported operand type(s) for %s: '%s' and '%s'", op,
                                   lhs.TypeName(), rhs.TypeName()));
}

absl::Status UndefinedOperand(const Value& lhs, const Value& rhs) {
  const Value& undefined = lhs.is_undefined() ? lhs : rhs;
  if (!undefined.undefined_name().empty()) return UndefinedError(undefined.undefined_name());
  return UndefinedError("operation on an undefined value");
}

absl::Status TooLarge(size_t max_size) {
  return LimitError(absl::StrFormat("a value would exceed %d bytes or items", max_size));
}

// Python's float floor modulo: the result has the sign of the divisor.
double FloatMod(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

// printf-style `str % args` for the conversions templates use: %s %r %d %i %f %%.
absl::StatusOr<Value> FormatPercent(const std::string& format, const Value& args) {
  std::vector<Value> values;
  if (args.is_tuple()) {
    values = args.list();
  } else {
    values.push_back(args);
  }
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) return ValueError("incomplete format");
    const char conversion = format[i];
    if (conversion == '%') {
      out += '%';
      continue;
    }
    if (next >= values.size()) return TypeError("not enough arguments for format string");
    const Value& v = values[next++];
    switch (conversion) {
      case 's':
        out += v.ToString();
        break;
      case 'r':
        out += v.Repr();
        break;
      case 'd':
      case 'i':
        if (!v.is_number()) return TypeError("%d format: a real number is required");
        out += absl::StrCat(v.is_float() ? static_cast<int64_t>(v.float_value()) : IntOf(v));
        break;
      case 'f':
        if (!v.is_number()) return TypeError("must be real number");
        out += absl::StrFormat("%f", v.AsDouble());
        break;
      default:
        return ValueError(absl::StrFormat("unsupported format character '%c'", conversion));
    }
  }
  if (next < values.size()) {
    return TypeError("not all arguments converted during string formatting");
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> Repeat(const Value& sequence, int64_t count, size_t max_size) {
  if (count <= 0) return sequence.is_string() ? Value::String("") : Value::List();
  const size_t unit =
      sequence.is_string() ? sequence.string_value().size() : sequence.list().size();
  if (unit != 0 && static_cast<uint64_t>(count) > max_size / unit) return TooLarge(max_size);
  if (sequence.is_string()) {
    std::string out;
    out.reserve(unit * count);
    for (int64_t i = 0; i < count; ++i) out += sequence.string_value();
    return Value::String(std::move(out));
  }
  ValueList out;
  for (int64_t i = 0; i < count; ++i) {
    out.insert(out.end(), sequence.list().begin(), sequence.list().end());
  }
  return sequence.is_tuple() ? Value::Tuple(std::move(out)) : Value::List(std::move(out));
}

absl::StatusOr<Value> Arithmetic(absl::string_view op, const Value& lhs, const Value& rhs) {
  if (IsInteger(lhs) && IsInteger(rhs)) {
    const int64_t a = IntOf(lhs);
    const int64_t b = IntOf(rhs);
    int64_t r = 0;
    if (op == "+" && !__builtin_add_overflow(a, b, &r)) return Value::Int(r);
    if (op == "-" && !__builtin_sub_overflow(a, b, &r)) return Value::Int(r);
    if (op == "*" && !__builtin_mul_overflow(a, b, &r)) return Value::Int(r);
    if (op == "//" || op == "%") {
      if (b == 0) return ValueError("ZeroDivisionError: integer division or modulo by zero");
      if (a == INT64_MIN && b == -1) return LimitError("integer overflow");
      int64_t q = a / b;
      int64_t m = a % b;
      if (m != 0 && ((m < 0) != (b < 0))) {
        --q;
        m += b;
      }
      return Value::Int(op == "//" ? q : m);
    }
    if (op == "**" && b >= 0) {
      int64_t result = 1;
      for (int64_t i = 0; i < b; ++i) {
        if (__builtin_mul_overflow(result, a, &result)) return LimitError("integer overflow");
        if (result == 0 || result == 1) break;
      }
      if (result == -1 && b % 2 == 0) result = 1;
      return Value::Int(result);
    }
    // Overflow of + - * falls through to floats; Python would keep an exact big int.
  }
  const double a = lhs.AsDouble();
  const double b = rhs.AsDouble();
  if (op == "+") return Value::Float(a + b);
  if (op == "-") return Value::Float(a - b);
  if (op == "*") return Value::Float(a * b);
  if (op == "/") {
    if (b == 0) return ValueError("ZeroDivisionError: division by zero");
    return Value::Float(a / b);
  }
  if (op == "//") {
    if (b == 0) return ValueError("ZeroDivisionError: float floor division by zero");
    return Value::Float(std::floor(a / b));
  }
  if (op == "%") {
    if (b == 0) return ValueError("ZeroDivisionError: float modulo");
    return Value::Float(FloatMod(a, b));
  }
  if (op == "**") return Value::Float(std::pow(a, b));
  return UnsupportedOperands(op, lhs, rhs);
}

}  // namespace

std::vector<uint32_t> ToCodepoints(absl::string_view text) { return DecodeUtf8(text); }

std::string FromCodepoints(const std::vector<uint32_t>& codepoints, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end && i < codepoints.size(); ++i) AppendUtf8(codepoints[i], &out);
  return out;
}

absl::StatusOr<Value> BinaryOp(absl::string_view op, const Value& lhs, const Value& rhs,
                               size_t max_size) {
  if (op == "~") {
    std::string out = lhs.ToString();
    const std::string right = rhs.ToString();
    if (out.size() + right.size() > max_size) return TooLarge(max_size);
    out += right;
    return Value::String(std::move(out));
  }
  if (lhs.is_undefined() || rhs.is_undefined()) return UndefinedOperand(lhs, rhs);
  if (lhs.is_number() && rhs.is_number()) return Arithmetic(op, lhs, rhs);
  if (op == "+") {
    if (lhs.is_string() && rhs.is_string()) {
      if (lhs.string_value().size() + rhs.string_value().size() > max_size) {
        return TooLarge(max_size);
      }
      if (lhs.is_markup() != rhs.is_markup()) {
        // Markup + str escapes the str (markupsafe's __add__ / __radd__).
        return Value::Markup(lhs.is_markup() ? lhs.string_value() + HtmlEscape(rhs.string_value())
                                             : HtmlEscape(lhs.string_value()) + rhs.string_value());
      }
      std::string joined = lhs.string_value() + rhs.string_value();
      return lhs.is_markup() ? Value::Markup(std::move(joined)) : Value::String(std::move(joined));
    }
    if (lhs.is_list() && rhs.is_list() && lhs.is_tuple() == rhs.is_tuple()) {
      if (lhs.list().size() + rhs.list().size() > max_size) return TooLarge(max_size);
      ValueList items = lhs.list();
      items.insert(items.end(), rhs.list().begin(), rhs.list().end());
      return lhs.is_tuple() ? Value::Tuple(std::move(items)) : Value::List(std::move(items));
    }
    if (lhs.is_string()) {
      return TypeError(
          absl::StrFormat("can only concatenate str (not \"%s\") to str", rhs.TypeName()));
    }
    if (lhs.is_list() && !lhs.is_tuple()) {
      return TypeError(
          absl::StrFormat("can only concatenate list (not \"%s\") to list", rhs.TypeName()));
    }
    return UnsupportedOperands(op, lhs, rhs);
  }
  if (op == "*") {
    if ((lhs.is_string() || lhs.is_list()) && IsInteger(rhs)) {
      return Repeat(lhs, IntOf(rhs), max_size);
    }
    if (IsInteger(lhs) && (rhs.is_string() || rhs.is_list())) {
      return Repeat(rhs, IntOf(lhs), max_size);
    }
    return TypeError(
        absl::StrFormat("can't multiply sequence by non-int of type '%s'",
                        (lhs.is_string() || lhs.is_list()) ? rhs.TypeName() : lhs.TypeName()));
  }
  if (op == "%" && lhs.is_string()) {
    auto formatted = FormatPercent(lhs.string_value(), rhs);
    if (formatted.ok() && formatted->string_value().size() > max_size) return TooLarge(max_size);
    return formatted;
  }
  return UnsupportedOperands(op, lhs, rhs);
}

absl::StatusOr<Value> Negate(const Value& operand) {
  if (operand.is_undefined()) return UndefinedOperand(operand, operand);
  if (operand.is_float()) return Value::Float(-operand.float_value());
  if (IsInteger(operand)) {
    if (IntOf(operand) == INT64_MIN) return Value::Float(-static_cast<double>(INT64_MIN));
    return Value::Int(-IntOf(operand));
  }
  return TypeError(absl::StrFormat("bad operand type for unary -: '%s'", operand.TypeName()));
}

absl::StatusOr<bool> Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        return TypeError(absl::StrFormat("'in <string>' requires string as left operand, not %s",
                                         item.TypeName()));
      }
      return container.string_value().find(item.string_value()) != std::string::npos;
    case Value::Kind::kList:
    case Value::Kind::kGenerator:
      for (const Value& element : container.list()) {
        if (element.Equals(item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      return item.is_string() && container.dict().Find(item.string_value()) != nullptr;
    default:
      return TypeError(
          absl::StrFormat("argument of type '%s' is not iterable", container.TypeName()));
  }
}

absl::StatusOr<bool> CompareOp(absl::string_view op, const Value& lhs, const Value& rhs) {
  if (op == "==") return lhs.Equals(rhs);
  if (op == "!=") return !lhs.Equals(rhs);
  if (op == "in") return Contains(rhs, lhs);
  if (op == "not in") {
    auto found = Contains(rhs, lhs);
    if (!found.ok()) return found.status();
    return !*found;
  }
  if (lhs.is_undefined() || rhs.is_undefined()) return UndefinedOperand(lhs, rhs);
  int order = 0;
  if (lhs.is_number() && rhs.is_number()) {
    if (IsInteger(lhs) && IsInteger(rhs)) {
      order = IntOf(lhs) < IntOf(rhs) ? -1 : IntOf(lhs) > IntOf(rhs) ? 1 : 0;
    } else {
      const double a = lhs.AsDouble();
      const double b = rhs.AsDouble();
      if (std::isnan(a) || std::isnan(b)) return false;
      order = a < b ? -1 : a > b ? 1 : 0;
    }
  } else if (lhs.is_string() && rhs.is_string()) {
    // UTF-8 byte order is codepoint order, which is how Python orders str.
    const int c = lhs.string_value().compare(rhs.string_value());
    order = c < 0 ? -1 : c > 0 ? 1 : 0;
  } else {
    return TypeError(absl::StrFormat("'%s' not supported between instances of '%s' and '%s'", op,
                                     lhs.TypeName(), rhs.TypeName()));
  }
  if (op == "<") return order < 0;
  if (op == "<=") return order <= 0;
  if (op == ">") return order > 0;
  if (op == ">=") return order >= 0;
  return TypeError(absl::StrCat("unknown comparison ", op));
}

absl::StatusOr<Value> GetAttr(const Value& object, absl::string_view name) {
  if (object.is_undefined()) {
    if (!object.undefined_name().empty()) return UndefinedError(object.undefined_name());
    return UndefinedError(
        absl::StrFormat("cannot read attribute '%s' of an undefined value", name));
  }
  if (std::optional<Value> method = BindMethod(object, name)) return *method;
  if (object.is_dict() || object.is_namespace()) {
    if (const Value* found = object.dict().Find(name)) return *found;
  }
  return Value::Undefined(
      absl::StrFormat("'%s object' has no attribute '%s'", object.TypeName(), name));
}

namespace {

// Python index normalization; false when out of range.
bool NormalizeIndex(int64_t index, size_t size, size_t* out) {
  const int64_t n = static_cast<int64_t>(size);
  if (index < 0) index += n;
  if (index < 0 || index >= n) return false;
  *out = static_cast<size_t>(index);
  return true;
}

}  // namespace

absl::StatusOr<Value> GetItem(const Value& object, const Value& key) {
  if (object.is_undefined()) return GetAttr(object, key.ToString());
  const Value missing = Value::Undefined(
      absl::StrFormat("'%s object' has no element %s", object.TypeName(), key.Repr()));
  if ((object.is_dict() || object.is_namespace()) && key.is_string()) {
    if (const Value* found = object.dict().Find(key.string_value())) return *found;
    if (std::optional<Value> method = BindMethod(object, key.string_value())) return *method;
    return missing;
  }
  if (object.is_list() && (key.is_int() || key.is_bool())) {
    size_t index = 0;
    if (!NormalizeIndex(IntOf(key), object.list().size(), &index)) return missing;
    return object.list()[index];
  }
  if (object.is_string() && (key.is_int() || key.is_bool())) {
    const std::vector<uint32_t> codepoints = ToCodepoints(object.string_value());
    size_t index = 0;
    if (!NormalizeIndex(IntOf(key), codepoints.size(), &index)) return missing;
    return Value::String(FromCodepoints(codepoints, index, index + 1));
  }
  if (key.is_string()) return GetAttr(object, key.string_value());
  return missing;
}

absl::StatusOr<Value> Slice(const Value& object, const Value& start_value, const Value& stop_value,
                            const Value& step_value) {
  auto is_missing = [](const Value& v) { return v.is_none() || v.is_undefined(); };
  for (const Value* part : {&start_value, &stop_value, &step_value}) {
    if (!is_missing(*part) && !IsInteger(*part)) {
      return TypeError("slice indices must be integers or None");
    }
  }
  const int64_t step = is_missing(step_value) ? 1 : IntOf(step_value);
  if (step == 0) return ValueError("slice step cannot be zero");

  std::vector<uint32_t> codepoints;
  int64_t length = 0;
  if (object.is_string()) {
    codepoints = ToCodepoints(object.string_value());
    length = static_cast<int64_t>(codepoints.size());
  } else if (object.is_list()) {
    length = static_cast<int64_t>(object.list().size());
  } else if (object.is_undefined()) {
    return GetAttr(object, "__getitem__");
  } else {
    return TypeError(absl::StrFormat("'%s' object is not subscriptable", object.TypeName()));
  }

  // CPython's PySlice_AdjustIndices.
  auto adjust = [&](const Value& v, int64_t fallback) {
    if (is_missing(v)) return fallback;
    int64_t i = IntOf(v);
    if (i < 0) {
      i += length;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= length) {
      i = step < 0 ? length - 1 : length;
    }
    return i;
  };
  const int64_t start = adjust(start_value, step < 0 ? length - 1 : 0);
  const int64_t stop = adjust(stop_value, step < 0 ? -1 : length);

  std::vector<int64_t> indices;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) indices.push_back(i);
  if (object.is_string()) {
    std::string out;
    for (int64_t i : indices) AppendUtf8(codepoints[i], &out);
    return Value::String(std::move(out));
  }
  ValueList out;
  for (int64_t i : indices) out.push_back(object.list()[i]);
  return object.is_tuple() ? Value::Tuple(std::move(out)) : Value::List(std::move(out));
}

absl::StatusOr<ValueList> Iterate(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return ValueList();
    case Value::Kind::kList:
    case Value::Kind::kGenerator:
      return value.list();
    case Value::Kind::kDict: {
      ValueList keys;
      for (const auto& [key, unused] : value.dict().items()) keys.push_back(Value::String(key));
      return keys;
    }
    case Value::Kind::kString: {
      ValueList chars;
      std::string piece;
      for (uint32_t cp : ToCodepoints(value.string_value())) {
        piece.clear();
        AppendUtf8(cp, &piece);
        chars.push_back(Value::String(piece));
      }
      return chars;
    }
    default:
      return TypeError(absl::StrFormat("'%s' object is not iterable", value.TypeName()));
  }
}

absl::StatusOr<int64_t> Length(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return static_cast<int64_t>(ToCodepoints(value.string_value()).size());
    case Value::Kind::kList:
      return static_cast<int64_t>(value.list().size());
    case Value::Kind::kDict:
      return static_cast<int64_t>(value.dict().size());
    default:
      return TypeError(absl::StrFormat("object of type '%s' has no len()", value.TypeName()));
  }
}

}  // namespace tandem::jinja
