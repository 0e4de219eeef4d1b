// From a parsed API request to the token-level request the coordinator runs: the chat
// template renders the messages, the tokenizer encodes the text, the answer's length is
// bounded by the context, and the template's end-of-turn texts become stop tokens (or
// stop strings when they are not one token).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/request.h"
#include "base/generation.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"

namespace tandem::api {

struct PreparedGeneration {
  GenerationRequest request;
  std::vector<std::string> stop_strings;  // the request's, plus multi-token end-of-turn texts
};

// Errors: the template failed (400), the prompt has no tokens (400), or the prompt and the
// answer do not fit n_ctx (400, context_length_exceeded).
absl::StatusOr<PreparedGeneration> PrepareGeneration(const ApiRequest& request,
                                                     const ChatTemplate& chat_template,
                                                     const Tokenizer& tokenizer, int64_t n_ctx);

}  // namespace tandem::api
