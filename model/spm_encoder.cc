#include "model/spm_encoder.h"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "model/pair_merge.h"
#include "model/unicode.h"

namespace tandem {

TokenId SpmEncoder::ByteToken(uint8_t byte) const {
  char hex[8];
  std::snprintf(hex, sizeof(hex), "<0x%02X>", byte);
  TokenId id = vocab_.Find(hex);
  if (id != kNoToken) return id;
  id = vocab_.Find(absl::string_view(reinterpret_cast<const char*>(&byte), 1));
  return id != kNoToken ? id : vocab_.special().unk;
}

void SpmEncoder::Encode(absl::string_view text, std::vector<TokenId>* out) const {
  // Highest score first: the merged piece must be a token.
  const std::vector<MergeSymbol> symbols = MergePairs(
      text, [&](absl::string_view left, absl::string_view right) -> std::optional<double> {
        const TokenId id = vocab_.Find(absl::string_view(left.data(), left.size() + right.size()));
        if (id == kNoToken) return std::nullopt;
        return vocab_.token(id).score;
      });
  if (symbols.empty()) return;

  // Every merged symbol is a token by construction; only single characters can miss.
  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const absl::string_view piece = text.substr(symbols[i].offset, symbols[i].length);
    const TokenId id = vocab_.Find(piece);
    if (id != kNoToken) {
      out->push_back(id);
      continue;
    }
    for (char c : piece) {
      const TokenId byte_id = ByteToken(static_cast<uint8_t>(c));
      if (byte_id != kNoToken) out->push_back(byte_id);  // a vocab without unk drops the byte
    }
  }
}

}  // namespace tandem
