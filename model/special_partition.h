// Splits raw text around special-token texts before subword encoding, as llama.cpp's
// tokenizer_st_partition does: tokens are taken longest first, each one cutting every
// remaining text fragment at all of its occurrences.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "model/vocab.h"

namespace tandem {

struct TextFragment {
  TokenId token = kNoToken;  // a special token, or kNoToken for raw text
  size_t offset = 0;         // raw text: [offset, offset + length) of the input
  size_t length = 0;

  bool is_text() const { return token == kNoToken; }
};

// User-defined tokens are always matched; control and unknown tokens only with
// `parse_special`. Text fragments are never empty.
std::vector<TextFragment> PartitionSpecialTokens(const Vocab& vocab, const std::string& text,
                                                 bool parse_special);

}  // namespace tandem
