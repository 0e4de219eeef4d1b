#include "api/api_error.h"

#include "absl/strings/cord.h"
#include "absl/types/optional.h"
#include "api/sse.h"
#include "nlohmann/json.hpp"

namespace tandem::api {
namespace {
constexpr char kParamPayload[] = "type.tandem/api.param";
}  // namespace

absl::Status WithParam(absl::Status status, absl::string_view param) {
  status.SetPayload(kParamPayload, absl::Cord(param));
  return status;
}

absl::Status InvalidParam(absl::string_view param, absl::string_view message) {
  return WithParam(absl::InvalidArgumentError(message), param);
}

std::string ParamOf(const absl::Status& status) {
  absl::optional<absl::Cord> p = status.GetPayload(kParamPayload);
  return p ? std::string(*p) : "";
}

ApiError ApiErrorFromStatus(const absl::Status& s) {
  ApiError e;
  e.message = std::string(s.message());
  e.param = ParamOf(s);
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      e.http_status = 400;
      e.type = "invalid_request_error";
      break;
    case absl::StatusCode::kOutOfRange:
      e.http_status = 400;
      e.type = "invalid_request_error";
      e.code = "context_length_exceeded";
      break;
    case absl::StatusCode::kUnauthenticated:
      e.http_status = 401;
      e.type = "authentication_error";
      e.code = "invalid_api_key";
      break;
    case absl::StatusCode::kNotFound:
      e.http_status = 404;
      e.type = "invalid_request_error";
      e.code = "not_found";
      break;
    case absl::StatusCode::kResourceExhausted:
      e.http_status = 429;
      e.type = "rate_limit_error";
      e.code = "rate_limit_exceeded";
      break;
    case absl::StatusCode::kUnavailable:
      e.http_status = 503;
      e.type = "server_error";
      e.code = "cluster_not_ready";
      break;
    case absl::StatusCode::kDeadlineExceeded:
      e.http_status = 504;
      e.type = "server_error";
      e.code = "timeout";
      break;
    default:
      e.http_status = 500;
      e.type = "server_error";
      break;
  }
  return e;
}

std::string ApiErrorBody(const ApiError& e) {
  nlohmann::json error = {{"message", e.message},
                          {"type", e.type},
                          {"param", e.param.empty() ? nlohmann::json() : nlohmann::json(e.param)},
                          {"code", e.code.empty() ? nlohmann::json() : nlohmann::json(e.code)}};
  return DumpJson({{"error", std::move(error)}});
}

}  // namespace tandem::api
