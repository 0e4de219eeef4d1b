// UTF-8 conversion and the Unicode properties the tokenizers need (general category, the
// White_Space property, simple lowercase). Decoding is deliberately as lenient as llama.cpp's,
// because token ids must match it byte for byte on malformed input too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace tandem {

// One general-category bit per codepoint, plus kWhitespace (the White_Space property).
enum CodepointFlags : uint16_t {
  kCpUndefined = 0x0001,
  kCpNumber = 0x0002,       // \p{N}
  kCpLetter = 0x0004,       // \p{L}
  kCpSeparator = 0x0008,    // \p{Z}
  kCpAccentMark = 0x0010,   // \p{M}
  kCpPunctuation = 0x0020,  // \p{P}
  kCpSymbol = 0x0040,       // \p{S}
  kCpControl = 0x0080,      // \p{C}
  kCpWhitespace = 0x0100,   // \s in the Unicode sense
};

inline constexpr uint32_t kReplacementCharacter = 0xFFFD;

uint16_t CodepointFlagsOf(uint32_t cpt);
uint32_t CodepointToLower(uint32_t cpt);
// The first codepoint of `cpt`'s canonical decomposition ("é" -> "e").
uint32_t CodepointNfdFirst(uint32_t cpt);

// Length of the UTF-8 sequence that starts with `lead`, judged from its high bits only
// (continuation bytes count as 1).
size_t Utf8SequenceLength(uint8_t lead);

// Decodes one codepoint at `*offset` and advances it. A malformed sequence yields U+FFFD and
// advances by one byte. Like llama.cpp, overlong forms and surrogates are accepted.
uint32_t DecodeUtf8(absl::string_view text, size_t* offset);
std::vector<uint32_t> DecodeUtf8(absl::string_view text);

void AppendUtf8(uint32_t cpt, std::string* out);
std::string EncodeUtf8(uint32_t cpt);

}  // namespace tandem
