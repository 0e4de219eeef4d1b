#include "model/bpe_encoder.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/byte_level.h"
#include "model/pair_merge.h"
#include "model/unicode.h"

namespace tandem {
namespace {

constexpr char kMergesKey[] = "tokenizer.ggml.merges";

std::string MergeKey(absl::string_view left, absl::string_view right) {
  std::string key;
  key.reserve(left.size() + right.size() + 1);
  key.append(left.data(), left.size());
  key.push_back('\0');
  key.append(right.data(), right.size());
  return key;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeEncoder>> BpeEncoder::Create(const Vocab& vocab,
                                                               const GgufFile& file) {
  TANDEM_ASSIGN_OR_RETURN(const BpePreset preset, BpePresetForName(vocab.pre_name()));
  TANDEM_ASSIGN_OR_RETURN(PreTokenizer pre, PreTokenizer::Create(preset.patterns));
  std::unique_ptr<BpeEncoder> encoder(new BpeEncoder(vocab, std::move(pre)));

  const GgufValue* merges_value = file.Find(kMergesKey);
  if (merges_value == nullptr) {
    return absl::NotFoundError(absl::StrCat("BPE vocab without '", kMergesKey, "'"));
  }
  TANDEM_ASSIGN_OR_RETURN(const std::vector<std::string> merges,
                          merges_value->AsStringArray(kMergesKey));
  encoder->merge_ranks_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const absl::string_view merge = merges[i];
    // Split at the first space after position 0, so that a left part of " " survives; a line
    // without one becomes the (unmatchable) empty pair, as in llama.cpp.
    const size_t space = merge.find(' ', 1);
    std::string key = space == absl::string_view::npos
                          ? MergeKey("", "")
                          : MergeKey(merge.substr(0, space), merge.substr(space + 1));
    encoder->merge_ranks_.try_emplace(std::move(key), static_cast<int32_t>(i));
  }
  return encoder;
}

int32_t BpeEncoder::MergeRank(absl::string_view left, absl::string_view right) const {
  thread_local std::string key;
  key.assign(left.data(), left.size());
  key.push_back('\0');
  key.append(right.data(), right.size());
  auto it = merge_ranks_.find(key);
  return it == merge_ranks_.end() ? -1 : it->second;
}

void BpeEncoder::Encode(absl::string_view text, std::vector<TokenId>* out) const {
  for (const std::string& word : pre_.Split(text)) EncodeWord(ByteLevelEncode(word), out);
}

void BpeEncoder::EncodeWord(const std::string& word, std::vector<TokenId>* out) const {
  if (vocab_.flags().ignore_merges) {
    const TokenId id = vocab_.Find(word);
    if (id != kNoToken) {
      out->push_back(id);
      return;
    }
  }
  const absl::string_view text = word;
  // Lowest rank first.
  const std::vector<MergeSymbol> symbols = MergePairs(
      text, [&](absl::string_view left, absl::string_view right) -> std::optional<double> {
        const int32_t rank = MergeRank(left, right);
        if (rank < 0) return std::nullopt;
        return -static_cast<double>(rank);
      });
  if (symbols.empty()) return;

  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const absl::string_view piece = text.substr(symbols[i].offset, symbols[i].length);
    const TokenId id = vocab_.Find(piece);
    if (id != kNoToken) {
      out->push_back(id);
      continue;
    }
    // llama.cpp's fallback: single bytes of the encoded text, where they happen to be tokens.
    for (size_t j = 0; j < piece.size(); ++j) {
      const TokenId byte_id = vocab_.Find(piece.substr(j, 1));
      if (byte_id != kNoToken) out->push_back(byte_id);
    }
  }
}

}  // namespace tandem
