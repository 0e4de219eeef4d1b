// GPT-2's byte-level alphabet: every byte gets a printable codepoint so that BPE vocabularies
// never contain raw control bytes or spaces (' ' is stored as 'Ġ', '\n' as 'Ċ').
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace tandem {

// The UTF-8 text of the codepoint that stands for `byte`.
const std::string& ByteLevelEncodeByte(uint8_t byte);
// Maps every byte of `text` to its codepoint.
std::string ByteLevelEncode(absl::string_view text);
// The byte `cpt` stands for, or -1 if it is not in the alphabet.
int ByteLevelDecodeCodepoint(uint32_t cpt);

}  // namespace tandem
