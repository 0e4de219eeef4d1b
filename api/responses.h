// The OpenAI response objects: chat.completion / chat.completion.chunk and text_completion
// (whole or streamed), usage and logprobs in each endpoint's shape.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/generation.h"
#include "api/request.h"
#include "model/tokenizer.h"
#include "nlohmann/json.hpp"

namespace tandem::api {

class ResponseEncoder {
 public:
  // `id` like "chatcmpl-…"; `created` in Unix seconds.
  ResponseEncoder(Endpoint endpoint, std::string id, int64_t created, std::string model,
                  const Tokenizer& tokenizer, bool logprobs);

  // Streaming: the first chat chunk carries the assistant role; text chunks follow, the
  // last one with the finish reason; with include_usage a final chunk has no choices.
  nlohmann::json RoleChunk() const;
  nlohmann::json Chunk(const Delta& delta, bool include_usage) const;
  nlohmann::json UsageChunk(int64_t prompt_tokens, int64_t completion_tokens) const;

  // Not streaming: the whole answer.
  nlohmann::json Whole(const std::string& text, const std::vector<GeneratedToken>& tokens,
                       const std::string& finish_reason, int64_t prompt_tokens,
                       int64_t completion_tokens) const;

  static nlohmann::json Usage(int64_t prompt_tokens, int64_t completion_tokens);

 private:
  nlohmann::json Envelope(bool chunk) const;
  // `text_offset` is where the tokens' text starts in the answer (completions only).
  nlohmann::json Logprobs(const std::vector<GeneratedToken>& tokens, size_t text_offset) const;

  Endpoint endpoint_;
  std::string id_;
  int64_t created_;
  std::string model_;
  const Tokenizer& tokenizer_;
  bool logprobs_;
  mutable size_t streamed_bytes_ = 0;  // text already sent, for completions' text_offset
};

}  // namespace tandem::api
