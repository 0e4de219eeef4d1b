// WordPiece as llama.cpp does it for `tokenizer.ggml.model = bert`: lowercase, strip accents
// (keep the first codepoint of each decomposition), split on whitespace and around punctuation
// and CJK characters, then match each word greedily longest-first. Word-initial pieces are
// stored with a U+2581 prefix in GGUF (the converter's "phantom space").
#pragma once

#include <string>
#include <vector>

#include "model/subword_encoder.h"
#include "model/vocab.h"

namespace tandem {

class WpmEncoder : public SubwordEncoder {
 public:
  explicit WpmEncoder(const Vocab& vocab) : vocab_(vocab) {}

  void Encode(absl::string_view text, std::vector<TokenId>* out) const override;

  // The normalized words of `text`.
  static std::vector<std::string> SplitWords(absl::string_view text);

 private:
  const Vocab& vocab_;
};

}  // namespace tandem
