#include "model/jinja/json_dumps.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/jinja/errors.h"
#include "model/unicode.h"

namespace tandem::jinja {
namespace {

// Values nested deeper than this are refused instead of recursing further.
constexpr int kMaxJsonDepth = 512;

// One byte of a JSON string: escapes for quotes, backslashes and control characters.
void AppendJsonByte(unsigned char c, std::string* out) {
  switch (c) {
    case '"':
      *out += "\\\"";
      break;
    case '\\':
      *out += "\\\\";
      break;
    case '\n':
      *out += "\\n";
      break;
    case '\r':
      *out += "\\r";
      break;
    case '\t':
      *out += "\\t";
      break;
    case '\b':
      *out += "\\b";
      break;
    case '\f':
      *out += "\\f";
      break;
    default:
      if (c < 0x20) {
        *out += absl::StrFormat("\\u%04x", c);
      } else {
        *out += static_cast<char>(c);
      }
  }
}

void AppendJsonString(const std::string& text, bool ensure_ascii, std::string* out) {
  *out += '"';
  if (!ensure_ascii) {
    for (unsigned char c : text) AppendJsonByte(c, out);
  } else {
    for (uint32_t cp : DecodeUtf8(text)) {
      if (cp < 0x80) {
        AppendJsonByte(static_cast<unsigned char>(cp), out);
      } else if (cp < 0x10000) {
        *out += absl::StrFormat("\\u%04x", cp);
      } else {
        // Beyond the BMP, Python writes a UTF-16 surrogate pair.
        const uint32_t v = cp - 0x10000;
        *out += absl::StrFormat("\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      }
    }
  }
  *out += '"';
}

class Dumper {
 public:
  explicit Dumper(const JsonDumpOptions& options) : options_(options) {
    item_separator_ = options.item_separator.value_or(options.indent ? "," : ", ");
  }

  absl::Status Dump(const Value& value, int depth, std::string* out) {
    if (depth > kMaxJsonDepth) return LimitError("value nested too deeply for tojson");
    switch (value.kind()) {
      case Value::Kind::kNone:
        *out += "null";
        return absl::OkStatus();
      case Value::Kind::kBool:
        *out += value.bool_value() ? "true" : "false";
        return absl::OkStatus();
      case Value::Kind::kInt:
        absl::StrAppend(out, value.int_value());
        return absl::OkStatus();
      case Value::Kind::kFloat: {
        const double f = value.float_value();
        if (std::isnan(f)) {
          *out += "NaN";
        } else if (std::isinf(f)) {
          *out += f > 0 ? "Infinity" : "-Infinity";
        } else {
          *out += FormatPythonFloat(f);
        }
        return absl::OkStatus();
      }
      case Value::Kind::kString:
        AppendJsonString(value.string_value(), options_.ensure_ascii, out);
        return absl::OkStatus();
      case Value::Kind::kList: {
        if (value.list().empty()) {
          *out += "[]";
          return absl::OkStatus();
        }
        *out += '[';
        for (size_t i = 0; i < value.list().size(); ++i) {
          if (i > 0) *out += item_separator_;
          NewLine(depth + 1, out);
          if (absl::Status s = Dump(value.list()[i], depth + 1, out); !s.ok()) return s;
        }
        NewLine(depth, out);
        *out += ']';
        return absl::OkStatus();
      }
      case Value::Kind::kDict: {
        if (value.dict().size() == 0) {
          *out += "{}";
          return absl::OkStatus();
        }
        std::vector<const std::pair<std::string, Value>*> items;
        for (const auto& item : value.dict().items()) items.push_back(&item);
        if (options_.sort_keys) {
          std::stable_sort(items.begin(), items.end(),
                           [](const auto* a, const auto* b) { return a->first < b->first; });
        }
        *out += '{';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i > 0) *out += item_separator_;
          NewLine(depth + 1, out);
          AppendJsonString(items[i]->first, options_.ensure_ascii, out);
          *out += options_.key_separator;
          if (absl::Status s = Dump(items[i]->second, depth + 1, out); !s.ok()) return s;
        }
        NewLine(depth, out);
        *out += '}';
        return absl::OkStatus();
      }
      default:
        return TypeError(
            absl::StrFormat("Object of type %s is not JSON serializable", value.TypeName()));
    }
  }

 private:
  void NewLine(int depth, std::string* out) const {
    if (!options_.indent) return;
    *out += '\n';
    out->append(static_cast<size_t>(std::max(0, *options_.indent)) * depth, ' ');
  }

  const JsonDumpOptions& options_;
  std::string item_separator_;
};

}  // namespace

absl::StatusOr<std::string> PythonJsonDumps(const Value& value, const JsonDumpOptions& options) {
  std::string out;
  Dumper dumper(options);
  if (absl::Status status = dumper.Dump(value, 0, &out); !status.ok()) return status;
  return out;
}

}  // namespace tandem::jinja
