// OpenAI-style errors: a status code and the body {"error": {message, type, param, code}}.
// Inside the API layer errors are absl::Status values; the parameter a client got wrong
// travels as a payload, and this file turns a status into what the client sees.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tandem::api {

struct ApiError {
  int http_status = 500;
  std::string message;
  std::string type;   // invalid_request_error, authentication_error, rate_limit_error, ...
  std::string param;  // the request field at fault, or empty
  std::string code;   // a machine-readable reason, or empty
};

// InvalidArgument naming the request field `param`.
absl::Status InvalidParam(absl::string_view param, absl::string_view message);
// `status` naming the request field `param`.
absl::Status WithParam(absl::Status status, absl::string_view param);
// The field a status names (InvalidParam), or "".
std::string ParamOf(const absl::Status& status);

// InvalidArgument / OutOfRange -> 400, Unauthenticated -> 401, NotFound -> 404,
// ResourceExhausted -> 429, Unavailable -> 503, DeadlineExceeded -> 504, else 500.
ApiError ApiErrorFromStatus(const absl::Status& status);
// {"error": {"message", "type", "param", "code"}} (param and code null when empty).
std::string ApiErrorBody(const ApiError& error);

}  // namespace tandem::api
