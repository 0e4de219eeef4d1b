#include "model/jinja/globals.h"

#include <utility>

#include "absl/strings/str_format.h"
#include "model/jinja/errors.h"

namespace tandem::jinja {
namespace {

absl::StatusOr<int64_t> IntArgument(const Value& v, absl::string_view function) {
  if (v.is_int()) return v.int_value();
  if (v.is_bool()) return static_cast<int64_t>(v.bool_value());
  return TypeError(absl::StrFormat("'%s' object cannot be interpreted as an integer (in %s)",
                                   v.TypeName(), function));
}

absl::StatusOr<Value> Range(const CallArgs& args, size_t max_range) {
  if (!args.keyword.empty()) return TypeError("range() takes no keyword arguments");
  const size_t n = args.positional.size();
  if (n < 1 || n > 3)
    return TypeError(absl::StrFormat("range expected 1 to 3 arguments, got %d", n));
  int64_t values[3] = {0, 0, 1};
  for (size_t i = 0; i < n; ++i) {
    auto v = IntArgument(args.positional[i], "range");
    if (!v.ok()) return v.status();
    values[n == 1 ? 1 : i] = *v;
  }
  const int64_t start = values[0];
  const int64_t stop = values[1];
  const int64_t step = values[2];
  if (step == 0) return ValueError("range() arg 3 must not be zero");
  ValueList items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (items.size() >= max_range) {
      return LimitError(absl::StrFormat("range() longer than %d items", max_range));
    }
    items.push_back(Value::Int(i));
    if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
  }
  return Value::List(std::move(items));
}

// namespace(dict?, **kwargs) and dict(dict?, **kwargs) build the same attribute table.
absl::StatusOr<ValueDict> KeywordTable(const CallArgs& args, absl::string_view function) {
  ValueDict table;
  if (args.positional.size() > 1) {
    return TypeError(absl::StrFormat("%s expected at most 1 positional argument", function));
  }
  if (args.positional.size() == 1) {
    const Value& initial = args.positional[0];
    if (!initial.is_dict()) {
      return TypeError(absl::StrFormat("%s() argument must be a mapping", function));
    }
    for (const auto& [key, value] : initial.dict().items()) table.Set(key, value);
  }
  for (const auto& [key, value] : args.keyword) table.Set(key, value);
  return table;
}

}  // namespace

std::tm LocalNow() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  return local;
}

absl::flat_hash_map<std::string, Value> MakeGlobals(Clock clock, size_t max_range) {
  absl::flat_hash_map<std::string, Value> globals;
  globals["range"] = Value::Function(
      "range", [max_range](const CallArgs& args) { return Range(args, max_range); });
  globals["namespace"] =
      Value::Function("namespace", [](const CallArgs& args) -> absl::StatusOr<Value> {
        auto table = KeywordTable(args, "namespace");
        if (!table.ok()) return table.status();
        return Value::Namespace(std::move(*table));
      });
  globals["dict"] = Value::Function("dict", [](const CallArgs& args) -> absl::StatusOr<Value> {
    auto table = KeywordTable(args, "dict");
    if (!table.ok()) return table.status();
    return Value::Dict(std::move(*table));
  });
  globals["raise_exception"] =
      Value::Function("raise_exception", [](const CallArgs& args) -> absl::StatusOr<Value> {
        const Value* message = args.Get(0, "message");
        return TemplateError(message != nullptr ? message->ToString() : "");
      });
  globals["strftime_now"] = Value::Function(
      "strftime_now", [clock = std::move(clock)](const CallArgs& args) -> absl::StatusOr<Value> {
        const Value* format = args.Get(0, "format");
        if (format == nullptr || !format->is_string()) {
          return TypeError("strftime_now() needs a format string");
        }
        const std::tm now = clock();
        // strftime has no way to report "buffer too small" apart from an empty result, so
        // grow until it fits or the format is clearly absurd.
        for (size_t size = 64; size <= 65536; size *= 4) {
          std::string buffer(size, '\0');
          const size_t written =
              std::strftime(buffer.data(), size, format->string_value().c_str(), &now);
          if (written > 0 || format->string_value().empty()) {
            buffer.resize(written);
            return Value::String(std::move(buffer));
          }
        }
        return Value::String("");
      });
  return globals;
}

}  // namespace tandem::jinja
