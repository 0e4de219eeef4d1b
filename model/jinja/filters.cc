#include "model/jinja/filters.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "model/jinja/errors.h"
#include "model/jinja/json_dumps.h"
#include "model/jinja/methods.h"
#include "model/jinja/tests.h"
#include "model/jinja/value_ops.h"
#include "model/unicode.h"

namespace tandem::jinja {
namespace {

using Filter = absl::StatusOr<Value> (*)(const Value& input, const CallArgs& args);

const Value* Arg(const CallArgs& args, size_t index, absl::string_view name) {
  return args.Get(index, name);
}

bool BoolArg(const CallArgs& args, size_t index, absl::string_view name, bool fallback) {
  const Value* v = Arg(args, index, name);
  return v == nullptr ? fallback : v->Truthy();
}

// Jinja2's make_attrgetter: "a.b.0" looks up a, then b, then index 0, each like `x[part]`.
absl::StatusOr<Value> GetAttributePath(const Value& item, const std::string& path) {
  Value current = item;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    int64_t index = 0;
    Value key =
        absl::SimpleAtoi(part, &index) ? Value::Int(index) : Value::String(std::string(part));
    auto next = GetItem(current, key);
    if (!next.ok()) return next.status();
    current = std::move(*next);
  }
  return current;
}

absl::StatusOr<std::string> AttributeArg(const CallArgs& args, size_t index) {
  const Value* v = Arg(args, index, "attribute");
  if (v == nullptr) return TypeError("missing attribute name");
  return v->ToString();
}

// Python str.splitlines() over codepoints.
std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  const std::vector<uint32_t> cps = ToCodepoints(text);
  size_t start = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    const uint32_t c = cps[i];
    const bool is_break = c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c ||
                          c == 0x1d || c == 0x1e || c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!is_break) continue;
    lines.push_back(FromCodepoints(cps, start, i));
    if (c == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < cps.size()) lines.push_back(FromCodepoints(cps, start, cps.size()));
  return lines;
}

absl::StatusOr<Value> CallMethod(const Value& self, absl::string_view name,
                                 const CallArgs& args = {}) {
  std::optional<Value> method = BindMethod(self, name);
  if (!method) return TypeError(absl::StrFormat("'%s' has no method %s", self.TypeName(), name));
  return method->callable().fn(args);
}

absl::StatusOr<Value> FilterToJson(const Value& input, const CallArgs& args) {
  JsonDumpOptions options;
  options.ensure_ascii = BoolArg(args, 0, "ensure_ascii", false);
  if (const Value* indent = Arg(args, 1, "indent"); indent != nullptr && !indent->is_none()) {
    if (!indent->is_int()) return TypeError("tojson indent must be an integer");
    options.indent = static_cast<int>(std::clamp<int64_t>(indent->int_value(), -1, 64));
  }
  if (const Value* separators = Arg(args, 2, "separators");
      separators != nullptr && !separators->is_none()) {
    if (!separators->is_list() || separators->list().size() != 2 ||
        !separators->list()[0].is_string() || !separators->list()[1].is_string()) {
      return TypeError("tojson separators must be a pair of strings");
    }
    options.item_separator = separators->list()[0].string_value();
    options.key_separator = separators->list()[1].string_value();
  }
  options.sort_keys = BoolArg(args, 3, "sort_keys", false);
  auto text = PythonJsonDumps(input, options);
  if (!text.ok()) return text.status();
  return Value::String(std::move(*text));
}

absl::StatusOr<Value> FilterLength(const Value& input, const CallArgs&) {
  auto length = Length(input);
  if (!length.ok()) return length.status();
  return Value::Int(*length);
}

absl::StatusOr<Value> FilterTrim(const Value& input, const CallArgs& args) {
  const Value* chars = Arg(args, 0, "chars");
  const std::string chars_text = chars != nullptr && !chars->is_none() ? chars->ToString() : "";
  return Value::String(StripString(
      input.ToString(), chars != nullptr && !chars->is_none() ? &chars_text : nullptr, true, true));
}

absl::StatusOr<Value> FilterUpper(const Value& input, const CallArgs&) {
  return CallMethod(Value::String(input.ToString()), "upper");
}
absl::StatusOr<Value> FilterLower(const Value& input, const CallArgs&) {
  return CallMethod(Value::String(input.ToString()), "lower");
}
absl::StatusOr<Value> FilterCapitalize(const Value& input, const CallArgs&) {
  return CallMethod(Value::String(input.ToString()), "capitalize");
}

// Jinja2's title: each chunk after a run of whitespace or -({[< gets an upper first letter.
absl::StatusOr<Value> FilterTitle(const Value& input, const CallArgs&) {
  const std::vector<uint32_t> cps = ToCodepoints(input.ToString());
  auto is_separator = [](uint32_t c) {
    return IsPythonSpace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
  };
  std::string out;
  bool word_start = true;
  for (uint32_t c : cps) {
    if (is_separator(c)) {
      AppendUtf8(c, &out);
      word_start = true;
      continue;
    }
    AppendUtf8(word_start ? ((c >= 'a' && c <= 'z') ? c - 32 : c) : CodepointToLower(c), &out);
    word_start = false;
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> FilterString(const Value& input, const CallArgs&) {
  return input.is_string() ? input : Value::String(input.ToString());
}

absl::StatusOr<Value> FilterList(const Value& input, const CallArgs&) {
  auto items = Iterate(input);
  if (!items.ok()) return items.status();
  return Value::List(std::move(*items));
}

absl::StatusOr<Value> FilterJoin(const Value& input, const CallArgs& args) {
  const Value* separator = Arg(args, 0, "d");
  const Value* attribute = Arg(args, 1, "attribute");
  auto items = Iterate(input);
  if (!items.ok()) return items.status();
  std::string out;
  for (size_t i = 0; i < items->size(); ++i) {
    if (i > 0 && separator != nullptr) out += separator->ToString();
    Value item = (*items)[i];
    if (attribute != nullptr && !attribute->is_none()) {
      auto looked_up = GetAttributePath(item, attribute->ToString());
      if (!looked_up.ok()) return looked_up.status();
      item = std::move(*looked_up);
    }
    out += item.ToString();
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> FilterDefault(const Value& input, const CallArgs& args) {
  const Value* fallback = Arg(args, 0, "default_value");
  const bool boolean = BoolArg(args, 1, "boolean", false);
  if (input.is_undefined() || (boolean && !input.Truthy())) {
    return fallback != nullptr ? *fallback : Value::String("");
  }
  return input;
}

absl::StatusOr<Value> FilterSafe(const Value& input, const CallArgs&) {
  return Value::Markup(input.ToString());
}

absl::StatusOr<Value> FilterEscape(const Value& input, const CallArgs&) {
  if (input.is_markup()) return input;
  return Value::Markup(HtmlEscape(input.ToString()));
}

absl::StatusOr<Value> FilterItems(const Value& input, const CallArgs&) {
  if (input.is_undefined()) return Value::Generator({});
  if (!input.is_dict()) return TypeError("Can only get item pairs from a mapping.");
  auto items = CallMethod(input, "items");
  if (!items.ok()) return items.status();
  return Value::Generator(items->list());
}

absl::StatusOr<Value> FilterReplace(const Value& input, const CallArgs& args) {
  CallArgs method_args;
  for (size_t i = 0; i < 3; ++i) {
    const Value* v = Arg(args, i, i == 0 ? "old" : i == 1 ? "new" : "count");
    if (v == nullptr) break;
    method_args.positional.push_back(i < 2 ? Value::String(v->ToString()) : *v);
  }
  return CallMethod(Value::String(input.ToString()), "replace", method_args);
}

absl::StatusOr<Value> FilterIndent(const Value& input, const CallArgs& args) {
  std::string indentation(4, ' ');
  if (const Value* width = Arg(args, 0, "width")) {
    if (width->is_string()) {
      indentation = width->string_value();
    } else if (width->is_int()) {
      indentation.assign(static_cast<size_t>(std::clamp<int64_t>(width->int_value(), 0, 256)), ' ');
    } else {
      return TypeError("indent width must be an integer or a string");
    }
  }
  const bool first = BoolArg(args, 1, "first", false);
  const bool blank = BoolArg(args, 2, "blank", false);
  // Jinja2 appends a newline before splitting, so a trailing newline does not add a line.
  std::vector<std::string> lines = SplitLines(input.ToString() + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += '\n';
      if (blank || !lines[i].empty()) out += indentation;
    }
    out += lines[i];
  }
  if (first) out = indentation + out;
  return Value::String(std::move(out));
}

absl::StatusOr<Value> FilterFirst(const Value& input, const CallArgs&) {
  auto items = Iterate(input);
  if (!items.ok()) return items.status();
  if (items->empty()) return Value::Undefined("No first item, sequence was empty.");
  return items->front();
}

absl::StatusOr<Value> FilterLast(const Value& input, const CallArgs&) {
  auto items = Iterate(input);
  if (!items.ok()) return items.status();
  if (items->empty()) return Value::Undefined("No last item, sequence was empty.");
  return items->back();
}

absl::StatusOr<Value> FilterReverse(const Value& input, const CallArgs&) {
  if (input.is_string()) {
    std::vector<uint32_t> cps = ToCodepoints(input.string_value());
    std::reverse(cps.begin(), cps.end());
    return Value::String(FromCodepoints(cps, 0, cps.size()));
  }
  auto items = Iterate(input);
  if (!items.ok()) return items.status();
  std::reverse(items->begin(), items->end());
  return Value::Generator(std::move(*items));
}

// select / reject / selectattr / rejectattr share this: keep items whose (attribute's) test
// result equals `keep`. Without a test name the value's truthiness decides.
absl::StatusOr<Value> SelectOrReject(const Value& input, const CallArgs& args, bool keep,
                                     bool by_attribute) {
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    auto name = AttributeArg(args, next++);
    if (!name.ok()) return name.status();
    attribute = *name;
  }
  std::optional<std::string> test;
  CallArgs test_args;
  if (next < args.positional.size()) {
    test = args.positional[next++].ToString();
    test_args.positional.assign(args.positional.begin() + next, args.positional.end());
  }
  // Jinja2 only iterates a truthy input here, so None selects nothing instead of failing.
  if (!input.Truthy()) return Value::Generator({});
  auto items = Iterate(input);
  if (!items.ok()) return items.status();
  ValueList kept;
  for (const Value& item : *items) {
    Value subject = item;
    if (by_attribute) {
      auto looked_up = GetAttributePath(item, attribute);
      if (!looked_up.ok()) return looked_up.status();
      subject = std::move(*looked_up);
    }
    bool result = subject.Truthy();
    if (test) {
      auto tested = ApplyTest(*test, subject, test_args);
      if (!tested.ok()) return tested.status();
      result = *tested;
    }
    if (result == keep) kept.push_back(item);
  }
  return Value::Generator(std::move(kept));
}

absl::StatusOr<Value> FilterSelect(const Value& input, const CallArgs& args) {
  return SelectOrReject(input, args, true, false);
}
absl::StatusOr<Value> FilterReject(const Value& input, const CallArgs& args) {
  return SelectOrReject(input, args, false, false);
}
absl::StatusOr<Value> FilterSelectAttr(const Value& input, const CallArgs& args) {
  return SelectOrReject(input, args, true, true);
}
absl::StatusOr<Value> FilterRejectAttr(const Value& input, const CallArgs& args) {
  return SelectOrReject(input, args, false, true);
}

absl::StatusOr<Value> FilterMap(const Value& input, const CallArgs& args) {
  if (!input.Truthy()) return Value::Generator({});  // as select: a falsy input maps to nothing
  auto items = Iterate(input);
  if (!items.ok()) return items.status();
  ValueList mapped;
  if (const Value* attribute = Arg(args, args.positional.size(), "attribute")) {
    const Value* fallback = Arg(args, args.positional.size(), "default");
    for (const Value& item : *items) {
      auto value = GetAttributePath(item, attribute->ToString());
      if (!value.ok()) return value.status();
      if (value->is_undefined() && fallback != nullptr) {
        mapped.push_back(*fallback);
      } else {
        mapped.push_back(std::move(*value));
      }
    }
    return Value::Generator(std::move(mapped));
  }
  if (args.positional.empty()) return TypeError("map requires a filter name or attribute=");
  const std::string filter = args.positional[0].ToString();
  CallArgs filter_args;
  filter_args.positional.assign(args.positional.begin() + 1, args.positional.end());
  filter_args.keyword = args.keyword;
  for (const Value& item : *items) {
    auto value = ApplyFilter(filter, item, filter_args);
    if (!value.ok()) return value.status();
    mapped.push_back(std::move(*value));
  }
  return Value::Generator(std::move(mapped));
}

// Strings compare case-insensitively unless case_sensitive, as Jinja2's unique and sort do.
Value SortKey(const Value& value, bool case_sensitive) {
  if (case_sensitive || !value.is_string()) return value;
  std::string lowered;
  for (uint32_t cp : ToCodepoints(value.string_value())) AppendUtf8(CodepointToLower(cp), &lowered);
  return Value::String(std::move(lowered));
}

absl::StatusOr<Value> FilterUnique(const Value& input, const CallArgs& args) {
  const bool case_sensitive = BoolArg(args, 0, "case_sensitive", false);
  const Value* attribute = Arg(args, 1, "attribute");
  auto items = Iterate(input);
  if (!items.ok()) return items.status();
  ValueList seen;
  ValueList unique;
  for (const Value& item : *items) {
    Value key = item;
    if (attribute != nullptr && !attribute->is_none()) {
      auto looked_up = GetAttributePath(item, attribute->ToString());
      if (!looked_up.ok()) return looked_up.status();
      key = std::move(*looked_up);
    }
    key = SortKey(key, case_sensitive);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return s.Equals(key); })) {
      continue;
    }
    seen.push_back(std::move(key));
    unique.push_back(item);
  }
  return Value::Generator(std::move(unique));
}

absl::StatusOr<Value> FilterSort(const Value& input, const CallArgs& args) {
  const bool reverse = BoolArg(args, 0, "reverse", false);
  const bool case_sensitive = BoolArg(args, 1, "case_sensitive", false);
  const Value* attribute = Arg(args, 2, "attribute");
  auto items = Iterate(input);
  if (!items.ok()) return items.status();
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : *items) {
    Value key = item;
    if (attribute != nullptr && !attribute->is_none()) {
      auto looked_up = GetAttributePath(item, attribute->ToString());
      if (!looked_up.ok()) return looked_up.status();
      key = std::move(*looked_up);
    }
    keyed.emplace_back(SortKey(key, case_sensitive), item);
  }
  absl::Status error;
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    auto less = CompareOp("<", reverse ? b.first : a.first, reverse ? a.first : b.first);
    if (!less.ok()) {
      error = less.status();
      return false;
    }
    return *less;
  });
  if (!error.ok()) return error;
  ValueList sorted;
  for (auto& [unused, item] : keyed) sorted.push_back(std::move(item));
  return Value::List(std::move(sorted));
}

absl::StatusOr<Value> FilterInt(const Value& input, const CallArgs& args) {
  const Value* fallback = Arg(args, 0, "default");
  const Value result_default = fallback != nullptr ? *fallback : Value::Int(0);
  if (input.is_int()) return input;
  if (input.is_bool()) return Value::Int(input.bool_value());
  if (input.is_float()) {
    if (!std::isfinite(input.float_value())) return result_default;
    return Value::Int(static_cast<int64_t>(input.float_value()));
  }
  if (input.is_string()) {
    const std::string text = StripString(input.string_value(), nullptr, true, true);
    int64_t i = 0;
    if (absl::SimpleAtoi(text, &i)) return Value::Int(i);
    double d = 0;
    if (absl::SimpleAtod(text, &d) && std::isfinite(d)) return Value::Int(static_cast<int64_t>(d));
  }
  return result_default;
}

absl::StatusOr<Value> FilterFloat(const Value& input, const CallArgs& args) {
  const Value* fallback = Arg(args, 0, "default");
  const Value result_default = fallback != nullptr ? *fallback : Value::Float(0.0);
  if (input.is_number()) return Value::Float(input.AsDouble());
  if (input.is_string()) {
    double d = 0;
    if (absl::SimpleAtod(StripString(input.string_value(), nullptr, true, true), &d)) {
      return Value::Float(d);
    }
  }
  return result_default;
}

absl::StatusOr<Value> FilterAbs(const Value& input, const CallArgs&) {
  if (input.is_float()) return Value::Float(std::fabs(input.float_value()));
  if (input.is_int() || input.is_bool()) {
    const int64_t i = input.is_bool() ? input.bool_value() : input.int_value();
    return i < 0 ? Negate(Value::Int(i)) : Value::Int(i);
  }
  return TypeError(absl::StrFormat("bad operand type for abs(): '%s'", input.TypeName()));
}

absl::StatusOr<Value> FilterRound(const Value& input, const CallArgs& args) {
  if (!input.is_number()) return TypeError("round() needs a number");
  int64_t precision = 0;
  if (const Value* p = Arg(args, 0, "precision"); p != nullptr && p->is_int()) {
    precision = std::clamp<int64_t>(p->int_value(), 0, 15);
  }
  const std::string method = Arg(args, 1, "method") ? Arg(args, 1, "method")->ToString() : "common";
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = input.AsDouble() * scale;
  double rounded = 0;
  if (method == "common") {
    rounded = std::round(x);
  } else if (method == "ceil") {
    rounded = std::ceil(x);
  } else if (method == "floor") {
    rounded = std::floor(x);
  } else {
    return TypeError("method must be common, ceil or floor");
  }
  return Value::Float(rounded / scale);
}

absl::StatusOr<Value> FilterSum(const Value& input, const CallArgs& args) {
  const Value* attribute = Arg(args, 0, "attribute");
  const Value* start = Arg(args, 1, "start");
  Value total = start != nullptr ? *start : Value::Int(0);
  auto items = Iterate(input);
  if (!items.ok()) return items.status();
  for (const Value& item : *items) {
    Value term = item;
    if (attribute != nullptr && !attribute->is_none()) {
      auto looked_up = GetAttributePath(item, attribute->ToString());
      if (!looked_up.ok()) return looked_up.status();
      term = std::move(*looked_up);
    }
    auto next = BinaryOp("+", total, term, SIZE_MAX);
    if (!next.ok()) return next.status();
    total = std::move(*next);
  }
  return total;
}

absl::StatusOr<Value> MinOrMax(const Value& input, const CallArgs& args, bool want_max) {
  const bool case_sensitive = BoolArg(args, 0, "case_sensitive", false);
  auto items = Iterate(input);
  if (!items.ok()) return items.status();
  if (items->empty()) return Value::Undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t i = 1; i < items->size(); ++i) {
    auto better = CompareOp(want_max ? ">" : "<", SortKey((*items)[i], case_sensitive),
                            SortKey((*items)[best], case_sensitive));
    if (!better.ok()) return better.status();
    if (*better) best = i;
  }
  return (*items)[best];
}

absl::StatusOr<Value> FilterMin(const Value& input, const CallArgs& args) {
  return MinOrMax(input, args, false);
}
absl::StatusOr<Value> FilterMax(const Value& input, const CallArgs& args) {
  return MinOrMax(input, args, true);
}

absl::StatusOr<Value> FilterFormat(const Value& input, const CallArgs& args) {
  Value values = args.positional.size() == 1 ? args.positional[0] : Value::Tuple(args.positional);
  return BinaryOp("%", Value::String(input.ToString()), values, SIZE_MAX);
}

absl::StatusOr<Value> FilterWordcount(const Value& input, const CallArgs&) {
  auto words = CallMethod(Value::String(input.ToString()), "split");
  if (!words.ok()) return words.status();
  return Value::Int(static_cast<int64_t>(words->list().size()));
}

absl::StatusOr<Value> FilterAttr(const Value& input, const CallArgs& args) {
  const Value* name = Arg(args, 0, "name");
  if (name == nullptr) return TypeError("attr needs a name");
  return GetAttr(input, name->ToString());
}

absl::StatusOr<Value> FilterDictsort(const Value& input, const CallArgs& args) {
  if (!input.is_dict()) return TypeError("You can only sort by either \"key\" or \"value\"");
  const bool case_sensitive = BoolArg(args, 0, "case_sensitive", false);
  const std::string by = Arg(args, 1, "by") ? Arg(args, 1, "by")->ToString() : "key";
  const bool reverse = BoolArg(args, 2, "reverse", false);
  ValueList pairs;
  for (const auto& [key, value] : input.dict().items()) {
    pairs.push_back(Value::Tuple({Value::String(key), value}));
  }
  const size_t index = by == "value" ? 1 : 0;
  absl::Status error;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& a, const Value& b) {
    const Value& x = reverse ? b : a;
    const Value& y = reverse ? a : b;
    auto less = CompareOp("<", SortKey(x.list()[index], case_sensitive),
                          SortKey(y.list()[index], case_sensitive));
    if (!less.ok()) {
      error = less.status();
      return false;
    }
    return *less;
  });
  if (!error.ok()) return error;
  return Value::List(std::move(pairs));
}

struct FilterEntry {
  const char* name;
  Filter filter;
};

constexpr FilterEntry kFilters[] = {
    {"tojson", FilterToJson},
    {"length", FilterLength},
    {"count", FilterLength},
    {"trim", FilterTrim},
    {"upper", FilterUpper},
    {"lower", FilterLower},
    {"capitalize", FilterCapitalize},
    {"title", FilterTitle},
    {"string", FilterString},
    {"list", FilterList},
    {"join", FilterJoin},
    {"default", FilterDefault},
    {"d", FilterDefault},
    {"safe", FilterSafe},
    {"escape", FilterEscape},
    {"e", FilterEscape},
    {"items", FilterItems},
    {"replace", FilterReplace},
    {"indent", FilterIndent},
    {"first", FilterFirst},
    {"last", FilterLast},
    {"reverse", FilterReverse},
    {"select", FilterSelect},
    {"reject", FilterReject},
    {"selectattr", FilterSelectAttr},
    {"rejectattr", FilterRejectAttr},
    {"map", FilterMap},
    {"unique", FilterUnique},
    {"sort", FilterSort},
    {"dictsort", FilterDictsort},
    {"int", FilterInt},
    {"float", FilterFloat},
    {"abs", FilterAbs},
    {"round", FilterRound},
    {"sum", FilterSum},
    {"min", FilterMin},
    {"max", FilterMax},
    {"format", FilterFormat},
    {"wordcount", FilterWordcount},
    {"attr", FilterAttr},
};

}  // namespace

absl::StatusOr<Value> ApplyFilter(absl::string_view name, const Value& input,
                                  const CallArgs& args) {
  for (const FilterEntry& entry : kFilters) {
    if (name == entry.name) return entry.filter(input, args);
  }
  return TypeError(absl::StrFormat("no filter named '%s'", name));
}

}  // namespace tandem::jinja
