// The chat template of a model: turns a conversation into the prompt text the model was
// trained on, by rendering the GGUF's `tokenizer.chat_template` (a Jinja2 template, rendered
// as Hugging Face transformers renders it) or, when the model has none, a ChatML default.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/gguf.h"
#include "model/jinja/template.h"
#include "model/vocab.h"
#include "nlohmann/json.hpp"

namespace tandem {

class ChatTemplate {
 public:
  // Parses `source` once; a syntax error names the line/column and problem.
  static absl::StatusOr<ChatTemplate> Parse(std::string source, std::string bos_token,
                                            std::string eos_token);
  // From a GGUF file's tokenizer.chat_template and the text of its BOS/EOS tokens, or
  // DefaultChatTemplateSource() when the file has no template.
  static absl::StatusOr<ChatTemplate> FromGguf(const GgufFile& file, const Vocab& vocab);
  // `--chat-template FILE`: the file's text replaces the model's template; BOS/EOS still
  // come from the model.
  static absl::StatusOr<ChatTemplate> FromFile(const std::string& path, const Vocab& vocab);

  // messages: [{"role": ..., "content": ...}, ...]; extra: more template variables (e.g.
  // "tools", a list of JSON-schema function definitions), overriding the defaults
  // (tools=None, documents=None). ordered_json keeps the caller's key order, which `tojson`
  // prints; a plain nlohmann::json converts implicitly (its keys come out sorted).
  // A raise_exception() in the template or a runtime type error is InvalidArgument with the
  // message; a hostile template hitting a render limit is ResourceExhausted.
  absl::StatusOr<std::string> Apply(
      const nlohmann::ordered_json& messages, bool add_generation_prompt,
      const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

  // Texts that end an assistant turn in this template (e.g. "<|im_end|>", "<|eot_id|>",
  // "<end_of_turn>"), to stop generation; the EOS text is always among them when known.
  const std::vector<std::string>& end_of_turn() const { return end_of_turn_; }

  const std::string& source() const { return source_; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }

  // Render limits and the clock strftime_now reads (tests pin the date).
  void set_render_options(jinja::RenderOptions options) { options_ = std::move(options); }

 private:
  ChatTemplate(std::string source, jinja::Template compiled, std::string bos_token,
               std::string eos_token)
      : source_(std::move(source)),
        compiled_(std::move(compiled)),
        bos_token_(std::move(bos_token)),
        eos_token_(std::move(eos_token)) {}

  void DetectEndOfTurn();

  std::string source_;
  jinja::Template compiled_;
  std::string bos_token_;
  std::string eos_token_;
  jinja::RenderOptions options_;
  std::vector<std::string> end_of_turn_;
};

// The template used when a model has none: ChatML (<|im_start|>role\n...<|im_end|>\n).
std::string_view DefaultChatTemplateSource();

}  // namespace tandem
