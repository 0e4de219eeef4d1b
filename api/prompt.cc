#include "api/prompt.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/api_error.h"

namespace tandem::api {

absl::StatusOr<PreparedGeneration> PrepareGeneration(const ApiRequest& r,
                                                     const ChatTemplate& chat_template,
                                                     const Tokenizer& tokenizer, int64_t n_ctx) {
  PreparedGeneration out;
  out.stop_strings = r.stop;
  std::string text;
  bool add_special = true;
  const bool chat = r.endpoint == Endpoint::kChatCompletions;
  if (chat) {
    auto rendered = chat_template.Apply(r.messages, /*add_generation_prompt=*/true);
    if (!rendered.ok()) {
      return InvalidParam("messages", absl::StrCat("the chat template refused the messages: ",
                                                   rendered.status().message()));
    }
    text = *std::move(rendered);
    // Templates that write the BOS text themselves must not get a second one.
    add_special =
        chat_template.bos_token().empty() || !absl::StartsWith(text, chat_template.bos_token());
    for (const std::string& eot : chat_template.end_of_turn()) {
      std::vector<TokenId> ids = tokenizer.Encode(eot, /*add_special=*/false,
                                                  /*parse_special=*/true);
      if (ids.size() == 1) {
        out.request.stop_ids.push_back(ids[0]);
      } else if (!eot.empty()) {
        out.stop_strings.push_back(eot);
      }
    }
  } else {
    text = r.prompt;
  }
  const char* prompt_param = chat ? "messages" : "prompt";
  // Control-token texts in a prompt are tokens, as `tandem generate` reads them.
  out.request.prompt_ids = tokenizer.Encode(text, add_special, /*parse_special=*/true);
  const int64_t n_prompt = static_cast<int64_t>(out.request.prompt_ids.size());
  if (n_prompt == 0) return InvalidParam(prompt_param, "the prompt has no tokens");
  if (n_prompt >= n_ctx) {
    return WithParam(absl::OutOfRangeError(
                         absl::StrCat("the prompt is ", n_prompt, " tokens; the context holds ",
                                      n_ctx, " tokens, with room needed for at least one more")),
                     prompt_param);
  }
  if (r.max_tokens && n_prompt + *r.max_tokens > n_ctx) {
    return WithParam(absl::OutOfRangeError(
                         absl::StrCat("the prompt (", n_prompt, " tokens) + max_tokens (",
                                      *r.max_tokens, ") exceed the context of ", n_ctx, " tokens")),
                     "max_tokens");
  }
  out.request.n_predict = r.max_tokens ? *r.max_tokens : static_cast<int32_t>(n_ctx - n_prompt);
  out.request.sampling = r.sampling;
  out.request.stop_at_eos = true;
  return out;
}

}  // namespace tandem::api
