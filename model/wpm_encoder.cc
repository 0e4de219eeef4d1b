#include "model/wpm_encoder.h"

#include <algorithm>

#include "model/unicode.h"

namespace tandem {
namespace {

// BERT's CJK ideograph blocks (its 0x2B920 lower bound kept as Hugging Face has it).
bool IsChineseChar(uint32_t cpt) {
  return (cpt >= 0x4E00 && cpt <= 0x9FFF) || (cpt >= 0x3400 && cpt <= 0x4DBF) ||
         (cpt >= 0x20000 && cpt <= 0x2A6DF) || (cpt >= 0x2A700 && cpt <= 0x2B73F) ||
         (cpt >= 0x2B740 && cpt <= 0x2B81F) || (cpt >= 0x2B920 && cpt <= 0x2CEAF) ||
         (cpt >= 0xF900 && cpt <= 0xFAFF) || (cpt >= 0x2F800 && cpt <= 0x2FA1F);
}

constexpr char kPhantomSpace[] = "\xE2\x96\x81";  // U+2581

}  // namespace

std::vector<std::string> WpmEncoder::SplitWords(absl::string_view text) {
  std::vector<std::string> words(1);
  for (uint32_t cpt : DecodeUtf8(text)) {
    cpt = CodepointNfdFirst(cpt);
    const uint16_t flags = CodepointFlagsOf(cpt);
    if (flags & kCpWhitespace) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (cpt == 0 || cpt == kReplacementCharacter || (flags & kCpControl)) continue;
    const std::string lower = EncodeUtf8(CodepointToLower(cpt));
    if ((flags & kCpPunctuation) || (cpt < 0x7F && (flags & kCpSymbol)) || IsChineseChar(cpt)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = lower;
      words.emplace_back();
    } else {
      words.back() += lower;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

void WpmEncoder::Encode(absl::string_view text, std::vector<TokenId>* out) const {
  const size_t max_length = vocab_.max_token_length();
  for (const std::string& word : SplitWords(text)) {
    const std::string prefixed = kPhantomSpace + word;
    const absl::string_view w = prefixed;
    const size_t start_size = out->size();
    for (size_t i = 0; i < w.size();) {
      size_t j = std::min(w.size(), i + max_length + 1);
      TokenId id = kNoToken;
      for (; j > i; --j) {
        id = vocab_.Find(w.substr(i, j - i));
        if (id != kNoToken) break;
      }
      if (id == kNoToken) {  // one unmatched piece makes the whole word unknown
        out->resize(start_size);
        break;
      }
      out->push_back(id);
      i = j;
    }
    if (out->size() == start_size && vocab_.special().unk != kNoToken) {
      out->push_back(vocab_.special().unk);
    }
  }
}

}  // namespace tandem
