// A client of a running cluster: generation and status over the Client and Coordinator
// services.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tandem.pb.h"

namespace tandem {

struct RemoteGeneration {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> ids;
  std::string text;
  double prompt_ms = 0;
  double decode_ms = 0;
  int64_t n_decode_steps = 0;
};

// Streams pieces to on_piece as they arrive.
absl::StatusOr<RemoteGeneration> RemoteGenerate(
    const std::string& address, const v1::GenerateRequest& request,
    const std::function<void(int32_t, const std::string&)>& on_piece);

absl::StatusOr<v1::StatusResponse> RemoteStatus(const std::string& address, int timeout_ms = 2000);

}  // namespace tandem
