// Python methods templates call on values: str.strip/split/startswith/..., dict.items/get/...
// Only non-mutating methods exist, as under transformers' ImmutableSandboxedEnvironment.
#pragma once

#include <optional>

#include "absl/strings/string_view.h"
#include "model/jinja/value.h"

namespace tandem::jinja {

// `self.name` as a callable bound to `self`, or nullopt when the type has no such method.
std::optional<Value> BindMethod(const Value& self, absl::string_view name);

// Python str.strip(chars) / lstrip / rstrip; `chars` null strips whitespace.
std::string StripString(absl::string_view text, const std::string* chars, bool left, bool right);

}  // namespace tandem::jinja
