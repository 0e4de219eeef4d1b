// The values a Jinja template computes with, modelled on the Python objects Jinja2 hands around:
// undefined, None, bool, int, float, str, list (and tuple), dict, generator, namespace and
// callables. Lists, dicts and namespaces are shared by reference, as in Python, so
// `{% set ns.x = 1 %}` is seen by everyone holding the namespace.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace tandem::jinja {

class Value;

using ValueList = std::vector<Value>;

// Python dict restricted to string keys (all a chat template needs); keeps insertion order
// because `tojson` and `items()` must print keys in the order they were given.
class ValueDict {
 public:
  const Value* Find(absl::string_view key) const;
  Value* Find(absl::string_view key);
  void Set(std::string key, Value value);
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  size_t size() const { return items_.size(); }

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

// Arguments of a call: positional first, then keyword (`f(1, indent=2)`).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The argument at `index`, or the keyword `name`, or nullptr.
  const Value* Get(size_t index, absl::string_view name) const;
};

using NativeFunction = std::function<absl::StatusOr<Value>(const CallArgs& args)>;

struct Callable {
  std::string name;
  NativeFunction fn;
};

class Value {
 public:
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,  // also tuples (is_tuple()), which only differ in how they print
    kDict,
    kGenerator,  // what map/select/selectattr/... return in Jinja2: iterable, but no len or JSON
    kNamespace,  // namespace(): attribute-assignable, shared by reference
    kCallable,
  };

  Value() = default;  // undefined
  static Value Undefined(std::string hint = "");
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double f);
  static Value String(std::string s);
  // markupsafe.Markup: a string marked safe (`| safe`, `| escape`). Adding a plain string to
  // it HTML-escapes the plain one, which templates relying on `"..."|safe + x` depend on.
  static Value Markup(std::string s);
  static Value List(ValueList items = {});
  static Value Tuple(ValueList items);
  static Value Generator(ValueList items);
  static Value Dict(ValueDict dict = {});
  static Value Namespace(ValueDict attributes = {});
  static Value Function(std::string name, NativeFunction fn);
  // Converts JSON (objects keep their key order; ordered_json keeps the caller's order).
  static Value FromJson(const nlohmann::ordered_json& json);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_markup() const { return kind_ == Kind::kString && markup_; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && tuple_; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_generator() const { return kind_ == Kind::kGenerator; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }
  // What `is iterable` accepts: str, list, dict, generator (and undefined, as in Jinja2).
  bool is_iterable() const;

  bool bool_value() const { return bool_; }
  int64_t int_value() const { return int_; }
  double float_value() const { return float_; }
  // int, bool or float as a double.
  double AsDouble() const;
  const std::string& string_value() const { return *string_; }
  // Lists, tuples and generators share this storage.
  const ValueList& list() const { return *list_; }
  ValueList& mutable_list() { return *list_; }
  const ValueDict& dict() const { return *dict_; }  // dicts and namespaces
  ValueDict& mutable_dict() const { return *dict_; }
  const Callable& callable() const { return *callable_; }
  // Why a value is undefined ("'x' is undefined"), for the error raised when it is used.
  const std::string& undefined_name() const;

  // Python truthiness.
  bool Truthy() const;
  // Python `==` (1 == 1.0 == True, lists and dicts compare element-wise).
  bool Equals(const Value& other) const;
  // str(x) as Jinja2 prints it: "" for undefined, "None", "True", Python float repr, and
  // Python repr for the elements of lists and dicts.
  std::string ToString() const;
  // repr(x): strings quoted as Python quotes them.
  std::string Repr() const;
  // Python type name for error messages ('NoneType', 'str', ...).
  std::string TypeName() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool tuple_ = false;
  bool markup_ = false;
  bool bool_ = false;
  int64_t int_ = 0;
  double float_ = 0.0;
  std::shared_ptr<const std::string> string_;
  std::shared_ptr<ValueList> list_;
  std::shared_ptr<ValueDict> dict_;
  std::shared_ptr<const Callable> callable_;
};

// markupsafe.escape: & < > " ' as HTML entities.
std::string HtmlEscape(absl::string_view text);

// Python float repr: shortest round-trip digits, "1.0", "1e-05", "1e+16", "inf", "nan".
std::string FormatPythonFloat(double value);

// Python's str.isspace() for one codepoint.
bool IsPythonSpace(uint32_t codepoint);

}  // namespace tandem::jinja
