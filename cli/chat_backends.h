// Where `tandem chat` sends a conversation: a cluster's OpenAI-compatible API (a streamed
// chat completion over HTTP) or a model in this process. Both take the same OpenAI request
// body, and the in-process one parses, renders (chat template) and tokenizes it with the
// code the API server runs (api/request.h, api/prompt.h), so both give the same answers.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace tandem::cli {

struct ChatReply {
  std::string text;
  std::string finish_reason;  // "stop", "length", or "interrupted" when `stop` was set
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

class ChatBackend {
 public:
  virtual ~ChatBackend() = default;
  // What the banner names: the model and where it runs.
  virtual std::string Describe() const = 0;
  // `body` is an OpenAI chat request ({"messages": [...], "max_tokens", "temperature", ...}).
  // The answer's text goes to `on_text` as it arrives; `stop` becoming true (a signal
  // handler sets it) ends the answer early, keeping what came. The request's errors carry
  // the API's codes (InvalidArgument for a bad request or an overlong conversation, ...).
  virtual absl::StatusOr<ChatReply> Answer(const nlohmann::ordered_json& body,
                                           const std::function<void(std::string_view)>& on_text,
                                           const std::atomic<bool>& stop) = 0;
};

// A running cluster. `address` is the coordinator's gRPC HOST:PORT (its Status tells where
// its HTTP API is), the API's own HOST:PORT, or an http:// URL. `api_key` may be empty.
absl::StatusOr<std::unique_ptr<ChatBackend>> ConnectChat(const std::string& address,
                                                         const std::string& api_key);

struct LocalChatOptions {
  std::string model;
  std::string chat_template;  // a Jinja file replacing the model's; empty: the model's
  int threads = 0;            // 0: every core
  int64_t ctx_size = 0;       // 0: the model's
};
absl::StatusOr<std::unique_ptr<ChatBackend>> LoadLocalChat(const LocalChatOptions& options);

}  // namespace tandem::cli
