#include "model/spm_encoder.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "model/unicode.h"

namespace tandem {
namespace {

// A span of the input; merged-away symbols keep length 0.
struct Symbol {
  int32_t prev;
  int32_t next;
  size_t offset;
  size_t length;
};

struct Bigram {
  int32_t left;
  int32_t right;
  float score;
  size_t length;  // detects stale entries: the pair's current length must still match
};

// Highest score first; on ties the leftmost pair, which is what makes results deterministic.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

TokenId SpmEncoder::ByteToken(uint8_t byte) const {
  char hex[8];
  std::snprintf(hex, sizeof(hex), "<0x%02X>", byte);
  TokenId id = vocab_.Find(hex);
  if (id != kNoToken) return id;
  id = vocab_.Find(absl::string_view(reinterpret_cast<const char*>(&byte), 1));
  return id != kNoToken ? id : vocab_.special().unk;
}

void SpmEncoder::Encode(absl::string_view text, std::vector<TokenId>* out) const {
  std::vector<Symbol> symbols;
  for (size_t offset = 0; offset < text.size();) {
    const size_t length =
        std::min(Utf8SequenceLength(static_cast<uint8_t>(text[offset])), text.size() - offset);
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, offset + length == text.size() ? -1 : index + 1, offset, length});
    offset += length;
  }
  if (symbols.empty()) return;

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  auto try_add = [&](int32_t left, int32_t right) {
    if (left == -1 || right == -1) return;
    const size_t length = symbols[left].length + symbols[right].length;
    const TokenId id = vocab_.Find(text.substr(symbols[left].offset, length));
    if (id == kNoToken) return;
    queue.push({left, right, vocab_.token(id).score, length});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length) {
      continue;
    }
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }

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
