#include "model/jinja/methods.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/jinja/errors.h"
#include "model/jinja/value_ops.h"
#include "model/unicode.h"

namespace tandem::jinja {
namespace {

using Method = absl::StatusOr<Value> (*)(const Value& self, const CallArgs& args);

absl::StatusOr<std::string> StringArg(const CallArgs& args, size_t index, absl::string_view name,
                                      absl::string_view method) {
  const Value* v = args.Get(index, name);
  if (v == nullptr) return TypeError(absl::StrFormat("%s() missing argument '%s'", method, name));
  if (!v->is_string()) {
    return TypeError(absl::StrFormat("%s() argument must be str, not %s", method, v->TypeName()));
  }
  return v->string_value();
}

// An optional str argument: null when absent or None.
absl::StatusOr<const std::string*> OptionalStringArg(const CallArgs& args, size_t index,
                                                     absl::string_view name,
                                                     absl::string_view method) {
  const Value* v = args.Get(index, name);
  if (v == nullptr || v->is_none()) return nullptr;
  if (!v->is_string()) {
    return TypeError(
        absl::StrFormat("%s() argument must be str or None, not %s", method, v->TypeName()));
  }
  return &v->string_value();
}

int64_t IntArg(const CallArgs& args, size_t index, absl::string_view name, int64_t fallback) {
  const Value* v = args.Get(index, name);
  if (v == nullptr || !(v->is_int() || v->is_bool())) return fallback;
  return v->is_bool() ? v->bool_value() : v->int_value();
}

uint32_t AsciiUpper(uint32_t cp) { return (cp >= 'a' && cp <= 'z') ? cp - 32 : cp; }
bool IsCased(uint32_t cp) {
  return (CodepointFlagsOf(cp) & kCpLetter) != 0 &&
         (CodepointToLower(cp) != cp || AsciiUpper(cp) != cp);
}

std::string MapCodepoints(absl::string_view text, uint32_t (*fn)(uint32_t)) {
  std::string out;
  for (uint32_t cp : ToCodepoints(text)) AppendUtf8(fn(cp), &out);
  return out;
}

absl::StatusOr<Value> Strip(const Value& self, const CallArgs& args, bool left, bool right) {
  auto chars = OptionalStringArg(args, 0, "chars", "strip");
  if (!chars.ok()) return chars.status();
  return Value::String(StripString(self.string_value(), *chars, left, right));
}

absl::StatusOr<Value> StrStrip(const Value& self, const CallArgs& args) {
  return Strip(self, args, true, true);
}
absl::StatusOr<Value> StrLstrip(const Value& self, const CallArgs& args) {
  return Strip(self, args, true, false);
}
absl::StatusOr<Value> StrRstrip(const Value& self, const CallArgs& args) {
  return Strip(self, args, false, true);
}

absl::StatusOr<Value> StrSplit(const Value& self, const CallArgs& args) {
  auto sep = OptionalStringArg(args, 0, "sep", "split");
  if (!sep.ok()) return sep.status();
  int64_t max_split = IntArg(args, 1, "maxsplit", -1);
  const std::string& text = self.string_value();
  ValueList parts;
  if (*sep == nullptr) {
    // Runs of whitespace separate; leading and trailing whitespace yields no empty parts.
    const std::vector<uint32_t> cps = ToCodepoints(text);
    size_t i = 0;
    while (i < cps.size()) {
      while (i < cps.size() && IsPythonSpace(cps[i])) ++i;
      if (i >= cps.size()) break;
      if (max_split >= 0 && static_cast<int64_t>(parts.size()) >= max_split) {
        size_t end = cps.size();
        while (end > i && IsPythonSpace(cps[end - 1])) --end;
        parts.push_back(Value::String(FromCodepoints(cps, i, end)));
        break;
      }
      size_t j = i;
      while (j < cps.size() && !IsPythonSpace(cps[j])) ++j;
      parts.push_back(Value::String(FromCodepoints(cps, i, j)));
      i = j;
    }
    return Value::List(std::move(parts));
  }
  const std::string& separator = **sep;
  if (separator.empty()) return ValueError("empty separator");
  size_t start = 0;
  while (max_split < 0 || static_cast<int64_t>(parts.size()) < max_split) {
    const size_t found = text.find(separator, start);
    if (found == std::string::npos) break;
    parts.push_back(Value::String(text.substr(start, found - start)));
    start = found + separator.size();
  }
  parts.push_back(Value::String(text.substr(start)));
  return Value::List(std::move(parts));
}

absl::StatusOr<Value> AffixTest(const Value& self, const CallArgs& args, bool prefix) {
  const Value* arg = args.Get(0, prefix ? "prefix" : "suffix");
  const char* method = prefix ? "startswith" : "endswith";
  if (arg == nullptr) return TypeError(absl::StrFormat("%s() takes at least 1 argument", method));
  std::vector<std::string> candidates;
  if (arg->is_string()) {
    candidates.push_back(arg->string_value());
  } else if (arg->is_tuple()) {
    for (const Value& v : arg->list()) {
      if (!v.is_string()) return TypeError(absl::StrFormat("%s() tuple must hold str", method));
      candidates.push_back(v.string_value());
    }
  } else {
    return TypeError(absl::StrFormat("%s first arg must be str or a tuple of str, not %s", method,
                                     arg->TypeName()));
  }
  const std::string& text = self.string_value();
  for (const std::string& c : candidates) {
    if (c.size() > text.size()) continue;
    if (prefix ? text.compare(0, c.size(), c) == 0
               : text.compare(text.size() - c.size(), c.size(), c) == 0) {
      return Value::Bool(true);
    }
  }
  return Value::Bool(false);
}

absl::StatusOr<Value> StrStartswith(const Value& self, const CallArgs& args) {
  return AffixTest(self, args, true);
}
absl::StatusOr<Value> StrEndswith(const Value& self, const CallArgs& args) {
  return AffixTest(self, args, false);
}

absl::StatusOr<Value> StrUpper(const Value& self, const CallArgs&) {
  return Value::String(MapCodepoints(self.string_value(), AsciiUpper));
}
absl::StatusOr<Value> StrLower(const Value& self, const CallArgs&) {
  return Value::String(MapCodepoints(self.string_value(), CodepointToLower));
}

absl::StatusOr<Value> StrTitle(const Value& self, const CallArgs&) {
  std::string out;
  bool previous_cased = false;
  for (uint32_t cp : ToCodepoints(self.string_value())) {
    const bool cased = IsCased(cp);
    AppendUtf8(cased ? (previous_cased ? CodepointToLower(cp) : AsciiUpper(cp)) : cp, &out);
    previous_cased = cased;
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> StrCapitalize(const Value& self, const CallArgs&) {
  std::vector<uint32_t> cps = ToCodepoints(self.string_value());
  for (size_t i = 0; i < cps.size(); ++i) {
    cps[i] = i == 0 ? AsciiUpper(cps[i]) : CodepointToLower(cps[i]);
  }
  return Value::String(FromCodepoints(cps, 0, cps.size()));
}

absl::StatusOr<Value> StrReplace(const Value& self, const CallArgs& args) {
  auto old_text = StringArg(args, 0, "old", "replace");
  if (!old_text.ok()) return old_text.status();
  auto new_text = StringArg(args, 1, "new", "replace");
  if (!new_text.ok()) return new_text.status();
  int64_t count = IntArg(args, 2, "count", -1);
  const std::string& text = self.string_value();
  std::string out;
  if (old_text->empty()) {
    // Python inserts `new` before every codepoint and at the end.
    const std::vector<uint32_t> cps = ToCodepoints(text);
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || static_cast<int64_t>(i) < count) out += *new_text;
      if (i < cps.size()) AppendUtf8(cps[i], &out);
    }
    return Value::String(std::move(out));
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t found = text.find(*old_text, start);
    if (found == std::string::npos) break;
    out.append(text, start, found - start);
    out += *new_text;
    start = found + old_text->size();
    ++done;
  }
  out.append(text, start, std::string::npos);
  return Value::String(std::move(out));
}

absl::StatusOr<Value> StrFind(const Value& self, const CallArgs& args) {
  auto needle = StringArg(args, 0, "sub", "find");
  if (!needle.ok()) return needle.status();
  const size_t found = self.string_value().find(*needle);
  if (found == std::string::npos) return Value::Int(-1);
  return Value::Int(
      static_cast<int64_t>(ToCodepoints(self.string_value().substr(0, found)).size()));
}

absl::StatusOr<Value> StrCount(const Value& self, const CallArgs& args) {
  auto needle = StringArg(args, 0, "sub", "count");
  if (!needle.ok()) return needle.status();
  const std::string& text = self.string_value();
  if (needle->empty()) return Value::Int(static_cast<int64_t>(ToCodepoints(text).size()) + 1);
  int64_t count = 0;
  for (size_t pos = text.find(*needle); pos != std::string::npos;
       pos = text.find(*needle, pos + needle->size())) {
    ++count;
  }
  return Value::Int(count);
}

absl::StatusOr<Value> StrJoin(const Value& self, const CallArgs& args) {
  const Value* iterable = args.Get(0, "iterable");
  if (iterable == nullptr) return TypeError("join() takes exactly one argument");
  auto items = Iterate(*iterable);
  if (!items.ok()) return items.status();
  std::string out;
  for (size_t i = 0; i < items->size(); ++i) {
    if (!(*items)[i].is_string()) {
      return TypeError(absl::StrFormat("sequence item %d: expected str instance, %s found", i,
                                       (*items)[i].TypeName()));
    }
    if (i > 0) out += self.string_value();
    out += (*items)[i].string_value();
  }
  return Value::String(std::move(out));
}

template <bool (*Pred)(uint32_t)>
absl::StatusOr<Value> StrIs(const Value& self, const CallArgs&) {
  const std::vector<uint32_t> cps = ToCodepoints(self.string_value());
  return Value::Bool(!cps.empty() && std::all_of(cps.begin(), cps.end(), Pred));
}
bool IsDigitCp(uint32_t cp) { return (CodepointFlagsOf(cp) & kCpNumber) != 0; }
bool IsAlphaCp(uint32_t cp) { return (CodepointFlagsOf(cp) & kCpLetter) != 0; }
bool IsAlnumCp(uint32_t cp) { return IsDigitCp(cp) || IsAlphaCp(cp); }

absl::StatusOr<Value> StrIsLower(const Value& self, const CallArgs&) {
  bool any_cased = false;
  for (uint32_t cp : ToCodepoints(self.string_value())) {
    if (!IsCased(cp)) continue;
    any_cased = true;
    if (CodepointToLower(cp) != cp) return Value::Bool(false);
  }
  return Value::Bool(any_cased);
}

absl::StatusOr<Value> StrIsUpper(const Value& self, const CallArgs&) {
  bool any_cased = false;
  for (uint32_t cp : ToCodepoints(self.string_value())) {
    if (!IsCased(cp)) continue;
    any_cased = true;
    if (AsciiUpper(cp) != cp || (cp >= 'a' && cp <= 'z')) return Value::Bool(false);
  }
  return Value::Bool(any_cased);
}

// str.format with `{}`, `{0}` and `{name}` fields; a format spec after ':' is ignored.
absl::StatusOr<Value> StrFormat(const Value& self, const CallArgs& args) {
  const std::string& text = self.string_value();
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') ++i;
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const size_t close = text.find('}', i);
    if (close == std::string::npos) return ValueError("Single '{' encountered in format string");
    std::string field = text.substr(i + 1, close - i - 1);
    field = field.substr(0, field.find(':'));
    const Value* value = nullptr;
    if (field.empty()) {
      value = auto_index < args.positional.size() ? &args.positional[auto_index] : nullptr;
      ++auto_index;
    } else if (std::all_of(field.begin(), field.end(), ::isdigit)) {
      const size_t index = std::stoul(field);
      value = index < args.positional.size() ? &args.positional[index] : nullptr;
    } else {
      for (const auto& [k, v] : args.keyword) {
        if (k == field) value = &v;
      }
    }
    if (value == nullptr) return ValueError(absl::StrCat("format field not found: ", field));
    out += value->ToString();
    i = close;
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> DictItems(const Value& self, const CallArgs&) {
  ValueList items;
  for (const auto& [key, value] : self.dict().items()) {
    items.push_back(Value::Tuple({Value::String(key), value}));
  }
  return Value::List(std::move(items));
}

absl::StatusOr<Value> DictKeys(const Value& self, const CallArgs&) {
  ValueList keys;
  for (const auto& [key, unused] : self.dict().items()) keys.push_back(Value::String(key));
  return Value::List(std::move(keys));
}

absl::StatusOr<Value> DictValues(const Value& self, const CallArgs&) {
  ValueList values;
  for (const auto& [unused, value] : self.dict().items()) values.push_back(value);
  return Value::List(std::move(values));
}

absl::StatusOr<Value> DictGet(const Value& self, const CallArgs& args) {
  const Value* key = args.Get(0, "key");
  if (key == nullptr) return TypeError("get expected at least 1 argument, got 0");
  if (key->is_string()) {
    if (const Value* found = self.dict().Find(key->string_value())) return *found;
  }
  const Value* fallback = args.Get(1, "default");
  return fallback != nullptr ? *fallback : Value::None();
}

struct MethodEntry {
  const char* name;
  Method method;
};

constexpr MethodEntry kStringMethods[] = {
    {"strip", StrStrip},
    {"lstrip", StrLstrip},
    {"rstrip", StrRstrip},
    {"split", StrSplit},
    {"startswith", StrStartswith},
    {"endswith", StrEndswith},
    {"upper", StrUpper},
    {"lower", StrLower},
    {"title", StrTitle},
    {"capitalize", StrCapitalize},
    {"replace", StrReplace},
    {"find", StrFind},
    {"count", StrCount},
    {"join", StrJoin},
    {"format", StrFormat},
    {"isdigit", StrIs<IsDigitCp>},
    {"isalpha", StrIs<IsAlphaCp>},
    {"isalnum", StrIs<IsAlnumCp>},
    {"isspace", StrIs<IsPythonSpace>},
    {"islower", StrIsLower},
    {"isupper", StrIsUpper},
};

constexpr MethodEntry kDictMethods[] = {
    {"items", DictItems},
    {"keys", DictKeys},
    {"values", DictValues},
    {"get", DictGet},
};

}  // namespace

std::string StripString(absl::string_view text, const std::string* chars, bool left, bool right) {
  const std::vector<uint32_t> cps = ToCodepoints(text);
  std::vector<uint32_t> strip_set;
  if (chars != nullptr) strip_set = ToCodepoints(*chars);
  auto strippable = [&](uint32_t cp) {
    if (chars == nullptr) return IsPythonSpace(cp);
    return std::find(strip_set.begin(), strip_set.end(), cp) != strip_set.end();
  };
  size_t begin = 0;
  size_t end = cps.size();
  if (left) {
    while (begin < end && strippable(cps[begin])) ++begin;
  }
  if (right) {
    while (end > begin && strippable(cps[end - 1])) --end;
  }
  return FromCodepoints(cps, begin, end);
}

std::optional<Value> BindMethod(const Value& self, absl::string_view name) {
  const MethodEntry* begin = nullptr;
  const MethodEntry* end = nullptr;
  if (self.is_string()) {
    begin = std::begin(kStringMethods);
    end = std::end(kStringMethods);
  } else if (self.is_dict()) {
    begin = std::begin(kDictMethods);
    end = std::end(kDictMethods);
  } else {
    return std::nullopt;
  }
  for (const MethodEntry* entry = begin; entry != end; ++entry) {
    if (name == entry->name) {
      const Method method = entry->method;
      return Value::Function(entry->name,
                             [self, method](const CallArgs& args) { return method(self, args); });
    }
  }
  return std::nullopt;
}

}  // namespace tandem::jinja
