// Jinja2's tests, the right-hand side of `x is defined`, `x is not none`, `x is divisibleby 3`
// (also what select/reject/selectattr apply).
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/jinja/value.h"

namespace tandem::jinja {

absl::StatusOr<bool> ApplyTest(absl::string_view name, const Value& value, const CallArgs& args);

}  // namespace tandem::jinja
