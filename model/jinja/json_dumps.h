// Python's json.dumps, which transformers installs as the `tojson` filter with
// ensure_ascii=False: ", " and ": " separators (just "," at line ends with an indent),
// keys in insertion order, floats as Python's repr.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "model/jinja/value.h"

namespace tandem::jinja {

struct JsonDumpOptions {
  bool ensure_ascii = false;                  // escape non-ASCII as \uXXXX
  std::optional<int> indent;                  // pretty-print with this many spaces per level
  std::optional<std::string> item_separator;  // default ", " (or "," with indent)
  std::string key_separator = ": ";
  bool sort_keys = false;
};

absl::StatusOr<std::string> PythonJsonDumps(const Value& value, const JsonDumpOptions& options);

}  // namespace tandem::jinja
