// Runtime errors, named after the Python exception Jinja2 would raise, so a caller (and the
// chat-template tests) can tell the kind apart. A template's own raise_exception(msg) carries
// `msg` verbatim, without a prefix, because it is meant to be shown to the user.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tandem::jinja {

inline absl::Status TypeError(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("TypeError: ", message));
}

inline absl::Status UndefinedError(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("UndefinedError: ", message));
}

inline absl::Status ValueError(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("ValueError: ", message));
}

// Render limits (output size, recursion, work) guard against hostile templates.
inline absl::Status LimitError(absl::string_view message) {
  return absl::ResourceExhaustedError(absl::StrCat("template limit: ", message));
}

inline absl::Status TemplateError(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

}  // namespace tandem::jinja
