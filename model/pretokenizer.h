// BPE pre-tokenization: the regex cascade that llama.cpp associates with each
// `tokenizer.ggml.pre` name, run on SplitRegex instead of std::regex.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/split_regex.h"

namespace tandem {

// Behaviour llama.cpp ties to a pre-tokenizer name (llama-vocab.cpp, load()).
struct BpePreset {
  std::vector<std::string> patterns;  // applied in order, each to the previous one's pieces
  bool clean_spaces = true;           // detokenizer's clean_up_tokenization_spaces
  bool ignore_merges = false;         // a word that is itself a token skips merging
  bool add_bos = false;               // default when tokenizer.ggml.add_bos_token is absent
  bool bos_none = false;              // the model has no BOS at all (chatglm-bpe)
};

// An empty name means "default", as in llama.cpp; an unknown name is an error.
absl::StatusOr<BpePreset> BpePresetForName(const std::string& pre_name);

class PreTokenizer {
 public:
  static absl::StatusOr<PreTokenizer> Create(const std::vector<std::string>& patterns);

  // Splits `text` into words. Malformed UTF-8 bytes come back as U+FFFD, as in llama.cpp.
  std::vector<std::string> Split(absl::string_view text) const;

 private:
  std::vector<SplitRegex> regexes_;
};

}  // namespace tandem
