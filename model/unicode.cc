#include "model/unicode.h"

#include <algorithm>

#include "model/unicode_tables.h"

namespace tandem {
namespace {

using unicode_internal::CodepointPair;
using unicode_internal::CodepointRange;

uint32_t LookupPair(const CodepointPair* table, size_t size, uint32_t cpt) {
  const CodepointPair* end = table + size;
  const CodepointPair* it = std::lower_bound(
      table, end, cpt, [](const CodepointPair& p, uint32_t c) { return p.from < c; });
  return (it != end && it->from == cpt) ? it->to : cpt;
}

}  // namespace

uint16_t CodepointFlagsOf(uint32_t cpt) {
  using unicode_internal::kCodepointRanges;
  using unicode_internal::kCodepointRangesSize;
  // ASCII dominates real text; a small cache avoids the binary search for it.
  static const auto* ascii = [] {
    auto* table = new uint16_t[128];
    for (uint32_t c = 0; c < 128; ++c) {
      const CodepointRange* it =
          std::upper_bound(kCodepointRanges, kCodepointRanges + kCodepointRangesSize, c,
                           [](uint32_t v, const CodepointRange& r) { return v < r.first; });
      table[c] = (it - 1)->flags;
    }
    return table;
  }();
  if (cpt < 128) return ascii[cpt];
  if (cpt >= 0x110000) return kCpUndefined;
  const CodepointRange* it =
      std::upper_bound(kCodepointRanges, kCodepointRanges + kCodepointRangesSize, cpt,
                       [](uint32_t v, const CodepointRange& r) { return v < r.first; });
  return (it - 1)->flags;
}

uint32_t CodepointToLower(uint32_t cpt) {
  if (cpt < 128) return (cpt >= 'A' && cpt <= 'Z') ? cpt + 32 : cpt;
  return LookupPair(unicode_internal::kLowercase, unicode_internal::kLowercaseSize, cpt);
}

uint32_t CodepointNfdFirst(uint32_t cpt) {
  if (cpt < 128) return cpt;
  return LookupPair(unicode_internal::kNfdFirst, unicode_internal::kNfdFirstSize, cpt);
}

size_t Utf8SequenceLength(uint8_t lead) {
  static constexpr size_t kLengthByHighBits[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengthByHighBits[lead >> 4];
}

uint32_t DecodeUtf8(absl::string_view text, size_t* offset) {
  const size_t pos = *offset;
  const size_t remaining = text.size() - pos;
  auto byte = [&](size_t i) { return static_cast<uint8_t>(text[pos + i]); };
  auto is_continuation = [&](size_t i) { return (byte(i) & 0xC0) == 0x80; };
  const uint8_t lead = byte(0);
  if (!(lead & 0x80)) {
    *offset += 1;
    return lead;
  }
  if ((lead & 0xE0) == 0xC0) {
    if (remaining >= 2 && is_continuation(1)) {
      *offset += 2;
      return ((lead & 0x1Fu) << 6) | (byte(1) & 0x3Fu);
    }
  } else if ((lead & 0xF0) == 0xE0) {
    if (remaining >= 3 && is_continuation(1) && is_continuation(2)) {
      *offset += 3;
      return ((lead & 0x0Fu) << 12) | ((byte(1) & 0x3Fu) << 6) | (byte(2) & 0x3Fu);
    }
  } else if ((lead & 0xF8) == 0xF0) {
    if (remaining >= 4 && is_continuation(1) && is_continuation(2) && is_continuation(3)) {
      *offset += 4;
      return ((lead & 0x07u) << 18) | ((byte(1) & 0x3Fu) << 12) | ((byte(2) & 0x3Fu) << 6) |
             (byte(3) & 0x3Fu);
    }
  }
  *offset += 1;
  return kReplacementCharacter;
}

std::vector<uint32_t> DecodeUtf8(absl::string_view text) {
  std::vector<uint32_t> cpts;
  cpts.reserve(text.size());
  size_t offset = 0;
  while (offset < text.size()) cpts.push_back(DecodeUtf8(text, &offset));
  return cpts;
}

void AppendUtf8(uint32_t cpt, std::string* out) {
  if (cpt < 0x80) {
    out->push_back(static_cast<char>(cpt));
  } else if (cpt < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x110000) {
    out->push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    AppendUtf8(kReplacementCharacter, out);
  }
}

std::string EncodeUtf8(uint32_t cpt) {
  std::string out;
  AppendUtf8(cpt, &out);
  return out;
}

}  // namespace tandem
