#include "model/byte_level.h"

#include <array>

#include "model/unicode.h"

namespace tandem {
namespace {

struct ByteLevelTables {
  std::array<std::string, 256> byte_to_text;
  std::array<int16_t, 512> codepoint_to_byte;  // every codepoint used is below 0x144
};

// Printable Latin-1 bytes keep their own codepoint; the rest are numbered from U+0100 up, in
// byte order.
const ByteLevelTables& Tables() {
  static const ByteLevelTables* tables = [] {
    auto* t = new ByteLevelTables;
    t->codepoint_to_byte.fill(-1);
    uint32_t next_extra = 256;
    for (uint32_t byte = 0; byte < 256; ++byte) {
      const bool printable = (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) ||
                             (byte >= 0xAE && byte <= 0xFF);
      const uint32_t cpt = printable ? byte : next_extra++;
      t->byte_to_text[byte] = EncodeUtf8(cpt);
      t->codepoint_to_byte[cpt] = static_cast<int16_t>(byte);
    }
    return t;
  }();
  return *tables;
}

}  // namespace

const std::string& ByteLevelEncodeByte(uint8_t byte) { return Tables().byte_to_text[byte]; }

std::string ByteLevelEncode(absl::string_view text) {
  const ByteLevelTables& t = Tables();
  std::string out;
  out.reserve(text.size() * 2);
  for (char c : text) out += t.byte_to_text[static_cast<uint8_t>(c)];
  return out;
}

int ByteLevelDecodeCodepoint(uint32_t cpt) {
  return cpt < 512 ? Tables().codepoint_to_byte[cpt] : -1;
}

}  // namespace tandem
