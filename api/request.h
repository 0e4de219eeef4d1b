// An OpenAI API request body, parsed and checked: /v1/chat/completions (messages) and
// /v1/completions (prompt). Every field this server knows is type- and range-checked; a
// bad one is an InvalidParam error naming it (api/api_error.h). Fields it does not know
// are ignored, as clients send many.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/sampling.h"
#include "nlohmann/json.hpp"

namespace tandem::api {

enum class Endpoint { kChatCompletions, kCompletions };

// Limits on what one request may ask for.
inline constexpr size_t kMaxStopStrings = 16;
inline constexpr size_t kMaxStopStringBytes = 1024;
inline constexpr int kMaxCompletionLogprobs = 5;  // /v1/completions `logprobs`

struct ApiRequest {
  Endpoint endpoint = Endpoint::kChatCompletions;
  std::string model;
  // Chat: [{"role", "content"}...] with content as text, ready for the chat template.
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  std::string prompt;                 // completions
  std::optional<int32_t> max_tokens;  // none: up to the context
  // OpenAI's defaults: temperature 1, top_p 1, no top-k, min-p or repetition penalty.
  SamplingParams sampling;
  bool has_seed = false;  // else sampling.seed is the caller's random default
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// `default_seed` is used when the request gives none.
absl::StatusOr<ApiRequest> ParseApiRequest(Endpoint endpoint, std::string_view body,
                                           uint64_t default_seed);

}  // namespace tandem::api
