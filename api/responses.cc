#include "api/responses.h"

namespace tandem::api {
namespace {
using Json = nlohmann::json;

Json Bytes(const std::string& s) {
  Json out = Json::array();
  for (unsigned char c : s) out.push_back(static_cast<int>(c));
  return out;
}
}  // namespace

ResponseEncoder::ResponseEncoder(Endpoint endpoint, std::string id, int64_t created,
                                 std::string model, const Tokenizer& tokenizer, bool logprobs)
    : endpoint_(endpoint),
      id_(std::move(id)),
      created_(created),
      model_(std::move(model)),
      tokenizer_(tokenizer),
      logprobs_(logprobs) {}

Json ResponseEncoder::Usage(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

Json ResponseEncoder::Envelope(bool chunk) const {
  const bool chat = endpoint_ == Endpoint::kChatCompletions;
  return {
      {"id", id_},
      {"object", chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
      {"created", created_},
      {"model", model_},
      {"system_fingerprint", nullptr}};
}

Json ResponseEncoder::Logprobs(const std::vector<GeneratedToken>& tokens,
                               size_t text_offset) const {
  if (!logprobs_) return nullptr;
  auto text_of = [&](TokenId id) { return tokenizer_.TokenToPiece(id, /*render_special=*/true); };
  if (endpoint_ == Endpoint::kChatCompletions) {
    Json content = Json::array();
    for (const GeneratedToken& t : tokens) {
      const std::string text = text_of(t.token);
      Json top = Json::array();
      for (const TokenLogprob& alt : t.top_logprobs) {
        const std::string alt_text = text_of(alt.token);
        top.push_back({{"token", alt_text}, {"logprob", alt.logprob}, {"bytes", Bytes(alt_text)}});
      }
      content.push_back({{"token", text},
                         {"logprob", t.logprob},
                         {"bytes", Bytes(text)},
                         {"top_logprobs", std::move(top)}});
    }
    return {{"content", std::move(content)}, {"refusal", nullptr}};
  }
  Json out = {{"tokens", Json::array()},
              {"token_logprobs", Json::array()},
              {"top_logprobs", Json::array()},
              {"text_offset", Json::array()}};
  size_t offset = text_offset;
  for (const GeneratedToken& t : tokens) {
    const std::string text = text_of(t.token);
    out["tokens"].push_back(text);
    out["token_logprobs"].push_back(t.logprob);
    Json top = Json::object();
    for (const TokenLogprob& alt : t.top_logprobs) top[text_of(alt.token)] = alt.logprob;
    out["top_logprobs"].push_back(std::move(top));
    out["text_offset"].push_back(offset);
    offset += tokenizer_.TokenToPiece(t.token, /*render_special=*/false).size();
  }
  return out;
}

Json ResponseEncoder::RoleChunk() const {
  Json j = Envelope(true);
  j["choices"] = Json::array({{{"index", 0},
                               {"delta", {{"role", "assistant"}, {"content", ""}}},
                               {"logprobs", nullptr},
                               {"finish_reason", nullptr}}});
  return j;
}

Json ResponseEncoder::Chunk(const Delta& d, bool include_usage) const {
  Json j = Envelope(true);
  Json choice = {{"index", 0}};
  if (endpoint_ == Endpoint::kChatCompletions) {
    choice["delta"] = d.text.empty() && d.finished ? Json::object() : Json{{"content", d.text}};
  } else {
    choice["text"] = d.text;
  }
  choice["logprobs"] = d.tokens.empty() ? Json() : Logprobs(d.tokens, streamed_bytes_);
  choice["finish_reason"] = d.finished ? Json(d.finish_reason) : Json();
  for (const GeneratedToken& t : d.tokens) {
    streamed_bytes_ += tokenizer_.TokenToPiece(t.token, /*render_special=*/false).size();
  }
  j["choices"] = Json::array({std::move(choice)});
  // With include_usage every chunk carries "usage": null, and a last chunk the totals.
  if (include_usage) j["usage"] = nullptr;
  return j;
}

Json ResponseEncoder::UsageChunk(int64_t prompt_tokens, int64_t completion_tokens) const {
  Json j = Envelope(true);
  j["choices"] = Json::array();
  j["usage"] = Usage(prompt_tokens, completion_tokens);
  return j;
}

Json ResponseEncoder::Whole(const std::string& text, const std::vector<GeneratedToken>& tokens,
                            const std::string& finish_reason, int64_t prompt_tokens,
                            int64_t completion_tokens) const {
  Json j = Envelope(false);
  Json choice = {{"index", 0}};
  if (endpoint_ == Endpoint::kChatCompletions) {
    choice["message"] = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = Logprobs(tokens, 0);
  choice["finish_reason"] = finish_reason;
  j["choices"] = Json::array({std::move(choice)});
  j["usage"] = Usage(prompt_tokens, completion_tokens);
  return j;
}

}  // namespace tandem::api
