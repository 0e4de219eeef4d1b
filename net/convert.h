// Conversions between wire messages and engine types, and between status kinds.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "base/sampling.h"
#include "tandem.pb.h"

namespace tandem {

SamplingParams SamplingFromProto(const v1::SamplingParams& p);
v1::SamplingParams SamplingToProto(const SamplingParams& p);

// absl and gRPC share their canonical codes.
inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}
inline absl::Status FromGrpcStatus(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace tandem
