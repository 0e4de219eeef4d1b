// Text <-> token ids for a GGUF model, matching llama.cpp (llama_tokenize, token_to_piece,
// llama_detokenize) id for id and byte for byte. Supports SentencePiece-style (`llama`),
// byte-level BPE (`gpt2`, with the pre-tokenizers named by `tokenizer.ggml.pre`) and
// WordPiece (`bert`) vocabularies.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/gguf.h"
#include "model/subword_encoder.h"
#include "model/vocab.h"

namespace tandem {

class Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& file);

  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: add BOS/EOS (SEP for BERT) as the vocab asks (tokenizer.ggml.add_bos_token /
  // add_eos_token, else llama.cpp's per-type default). parse_special: recognise control-token
  // texts in `text`; user-defined tokens are recognised either way.
  std::vector<TokenId> Encode(const std::string& text, bool add_special, bool parse_special) const;

  // One token's text: byte tokens as raw bytes, U+2581 as ' ', BPE byte-level decoded. Control
  // and unknown tokens are empty unless `render_special`; unknown ids are empty.
  std::string TokenToPiece(TokenId id, bool render_special) const;

  // llama_detokenize: concatenated pieces; strips the SPM prefix space from the first piece,
  // drops a leading BOS / trailing EOS when `remove_special`, and cleans up spaces before
  // punctuation for vocabs that ask for it.
  std::string Decode(const std::vector<TokenId>& ids, bool remove_special,
                     bool unparse_special) const;

  int32_t n_vocab() const { return vocab_->size(); }
  TokenId bos() const { return vocab_->special().bos; }  // kNoToken (-1) when none
  TokenId eos() const { return vocab_->special().eos; }
  bool IsEog(TokenId id) const { return vocab_->IsEog(id); }
  const Vocab& vocab() const { return *vocab_; }

 private:
  explicit Tokenizer(std::unique_ptr<Vocab> vocab) : vocab_(std::move(vocab)) {}

  // Encoders keep a reference to the vocab, so it lives behind a stable pointer.
  std::unique_ptr<Vocab> vocab_;
  std::unique_ptr<SubwordEncoder> encoder_;
};

}  // namespace tandem
