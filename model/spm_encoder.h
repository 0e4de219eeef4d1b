// SentencePiece-style encoding as llama.cpp does it for `tokenizer.ggml.model = llama`:
// start from UTF-8 characters and repeatedly merge the adjacent pair whose concatenation is
// the highest-scoring token; leftovers that are not tokens fall back to <0xNN> byte tokens.
#pragma once

#include "model/subword_encoder.h"
#include "model/vocab.h"

namespace tandem {

class SpmEncoder : public SubwordEncoder {
 public:
  explicit SpmEncoder(const Vocab& vocab) : vocab_(vocab) {}

  // `text` must already have its spaces escaped to U+2581 (and any prefix space added).
  void Encode(absl::string_view text, std::vector<TokenId>* out) const override;

  // The token for a raw byte: <0xNN>, else the one-byte text itself, else unk (which may be
  // kNoToken).
  TokenId ByteToken(uint8_t byte) const;

 private:
  const Vocab& vocab_;
};

}  // namespace tandem
