// Byte-level BPE as llama.cpp does it for `tokenizer.ggml.model = gpt2`: pre-tokenize with the
// regex cascade of `tokenizer.ggml.pre`, map each word's bytes to GPT-2's byte alphabet, then
// apply `tokenizer.ggml.merges` lowest rank first.
#pragma once

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "model/gguf.h"
#include "model/pretokenizer.h"
#include "model/subword_encoder.h"
#include "model/vocab.h"

namespace tandem {

class BpeEncoder : public SubwordEncoder {
 public:
  static absl::StatusOr<std::unique_ptr<BpeEncoder>> Create(const Vocab& vocab,
                                                            const GgufFile& file);

  void Encode(absl::string_view text, std::vector<TokenId>* out) const override;

 private:
  BpeEncoder(const Vocab& vocab, PreTokenizer pre) : vocab_(vocab), pre_(std::move(pre)) {}

  // Merges one byte-level encoded word and appends its ids.
  void EncodeWord(const std::string& word, std::vector<TokenId>* out) const;
  // Rank of merging `left` and `right`, or -1.
  int32_t MergeRank(absl::string_view left, absl::string_view right) const;

  const Vocab& vocab_;
  PreTokenizer pre_;
  // Keyed by left + '\0' + right: byte-level tokens never contain a raw NUL.
  absl::flat_hash_map<std::string, int32_t> merge_ranks_;
};

}  // namespace tandem
