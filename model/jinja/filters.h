// Jinja2's built-in filters (`x | name(args)`) that chat templates use, with transformers'
// `tojson` (Python json.dumps, see json_dumps.h). Filters that return generators in Jinja2
// (map, select, selectattr, reject, rejectattr, unique, items) return generator values here
// too, so `| length` or `| tojson` on them fails as it does under transformers.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/jinja/value.h"

namespace tandem::jinja {

absl::StatusOr<Value> ApplyFilter(absl::string_view name, const Value& input, const CallArgs& args);

}  // namespace tandem::jinja
