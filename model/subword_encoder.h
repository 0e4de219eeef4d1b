// The algorithm-specific half of encoding: turns one fragment of plain text (special tokens
// already split out) into token ids.
#pragma once

#include <vector>

#include "absl/strings/string_view.h"
#include "model/vocab.h"

namespace tandem {

class SubwordEncoder {
 public:
  virtual ~SubwordEncoder() = default;
  // Appends the ids for `text` to `out`.
  virtual void Encode(absl::string_view text, std::vector<TokenId>* out) const = 0;
};

}  // namespace tandem
