#include "model/chat_template.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace tandem {
namespace {

constexpr std::string_view kDefaultTemplate =
    "{%- for message in messages -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}\n"
    "{%- if message['content'] is string -%}{{- message['content'] -}}{%- endif -%}\n"
    "{{- '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n";

// End-of-turn markers of well-known template families; any that a template's text contains
// stops generation too (e.g. Llama 3.1's <|eom_id|> after a tool call).
constexpr std::string_view kKnownEndOfTurn[] = {"<|im_end|>",
                                                "<|eot_id|>",
                                                "<|eom_id|>",
                                                "<end_of_turn>",
                                                "<|end|>",
                                                "<|END_OF_TURN_TOKEN|>",
                                                "<|EOT|>",
                                                "<|end_of_turn|>",
                                                "<|endoftext|>",
                                                "<|end_of_text|>",
                                                "<｜end▁of▁sentence｜>"};

std::string TokenText(const Vocab& vocab, TokenId id) {
  return vocab.Contains(id) ? vocab.token(id).text : "";
}

bool IsAsciiSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

std::string_view DefaultChatTemplateSource() { return kDefaultTemplate; }

absl::StatusOr<ChatTemplate> ChatTemplate::Parse(std::string source, std::string bos_token,
                                                 std::string eos_token) {
  auto compiled = jinja::Template::Parse(source);
  if (!compiled.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("chat template: ", compiled.status().message()));
  }
  ChatTemplate chat(std::move(source), std::move(*compiled), std::move(bos_token),
                    std::move(eos_token));
  chat.DetectEndOfTurn();
  return chat;
}

absl::StatusOr<ChatTemplate> ChatTemplate::FromGguf(const GgufFile& file, const Vocab& vocab) {
  std::string source(DefaultChatTemplateSource());
  if (file.Has("tokenizer.chat_template")) {
    TANDEM_ASSIGN_OR_RETURN(source, file.GetString("tokenizer.chat_template"));
  }
  return Parse(std::move(source), TokenText(vocab, vocab.special().bos),
               TokenText(vocab, vocab.special().eos));
}

absl::StatusOr<ChatTemplate> ChatTemplate::FromFile(const std::string& path, const Vocab& vocab) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open chat template file ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read chat template file ", path));
  return Parse(text.str(), TokenText(vocab, vocab.special().bos),
               TokenText(vocab, vocab.special().eos));
}

absl::StatusOr<std::string> ChatTemplate::Apply(const nlohmann::ordered_json& messages,
                                                bool add_generation_prompt,
                                                const nlohmann::ordered_json& extra) const {
  if (!messages.is_array()) return absl::InvalidArgumentError("messages must be a JSON array");
  if (!extra.is_object()) return absl::InvalidArgumentError("extra must be a JSON object");
  // The variables transformers' apply_chat_template passes.
  jinja::ValueDict variables;
  variables.Set("messages", jinja::Value::FromJson(messages));
  variables.Set("tools", jinja::Value::None());
  variables.Set("documents", jinja::Value::None());
  variables.Set("add_generation_prompt", jinja::Value::Bool(add_generation_prompt));
  variables.Set("bos_token", jinja::Value::String(bos_token_));
  variables.Set("eos_token", jinja::Value::String(eos_token_));
  for (const auto& [key, value] : extra.items()) {
    variables.Set(key, jinja::Value::FromJson(value));
  }
  return compiled_.Render(variables, options_);
}

// The first marker in `text`: a whole `<...>` tag when it starts with '<' (special tokens
// often follow each other without a space), else the first whitespace-delimited word.
std::string FirstMarker(std::string_view text) {
  size_t begin = 0;
  while (begin < text.size() && IsAsciiSpace(text[begin])) ++begin;
  size_t end = begin;
  if (begin < text.size() && text[begin] == '<') {
    const size_t close = text.find('>', begin);
    if (close != std::string_view::npos) return std::string(text.substr(begin, close + 1 - begin));
  }
  while (end < text.size() && !IsAsciiSpace(text[end])) ++end;
  return std::string(text.substr(begin, end - begin));
}

// Renders probe conversations and takes what the template writes right after the
// assistant's text: that is its end-of-turn marker. With a user turn after the reply this
// also finds templates that end a turn by starting the next one (GLM's <|user|>).
void ChatTemplate::DetectEndOfTurn() {
  static constexpr std::string_view kReply = "Tandem-probe-reply-7f3a";
  static constexpr std::string_view kFollowUp = "Tandem-probe-follow-up-7f3a";
  auto add = [this](std::string marker) {
    if (marker.empty()) return;
    if (std::find(end_of_turn_.begin(), end_of_turn_.end(), marker) != end_of_turn_.end()) return;
    end_of_turn_.push_back(std::move(marker));
  };
  nlohmann::ordered_json probe = {
      {{"role", "user"}, {"content", "Tandem-probe-question"}},
      {{"role", "assistant"}, {"content", std::string(kReply)}},
      {{"role", "user"}, {"content", std::string(kFollowUp)}},
  };
  for (int attempt = 0; attempt < 2 && end_of_turn_.empty(); ++attempt) {
    if (attempt == 1) probe.erase(2);  // templates that want the reply last
    auto rendered = Apply(probe, false);
    if (!rendered.ok()) continue;
    const size_t at = rendered->find(kReply);
    if (at == std::string::npos) continue;
    std::string_view after = std::string_view(*rendered).substr(at + kReply.size());
    after = after.substr(0, after.find(kFollowUp));
    add(FirstMarker(after));
  }
  add(eos_token_);
  for (std::string_view marker : kKnownEndOfTurn) {
    if (source_.find(marker) != std::string::npos) add(std::string(marker));
  }
}

}  // namespace tandem
