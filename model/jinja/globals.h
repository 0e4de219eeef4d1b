// Functions every template can call: range, namespace, dict, and the two transformers adds,
// raise_exception(msg) (fails the render with `msg`) and strftime_now(format).
#pragma once

#include <ctime>
#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "model/jinja/value.h"

namespace tandem::jinja {

// The local time strftime_now formats; a seam so tests can pin the date.
using Clock = std::function<std::tm()>;
std::tm LocalNow();

// `max_range` bounds how many numbers range() may produce.
absl::flat_hash_map<std::string, Value> MakeGlobals(Clock clock, size_t max_range);

}  // namespace tandem::jinja
