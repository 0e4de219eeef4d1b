// A tokenizer vocabulary read from GGUF `tokenizer.ggml.*` metadata: token texts, scores and
// attributes, the special-token ids, and the per-model flags llama.cpp derives from them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/gguf.h"

namespace tandem {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

enum class VocabType {
  kSpm,  // tokenizer.ggml.model = "llama": SentencePiece scores + byte fallback
  kBpe,  // "gpt2": byte-level BPE with merges and a regex pre-tokenizer
  kWpm,  // "bert": WordPiece
};

// Bit flags, as llama.cpp's llama_token_attr.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLstrip = 1u << 7,  // parse_special eats whitespace left of the token
  kAttrRstrip = 1u << 8,  // ... and right of it
};

struct TokenData {
  std::string text;
  float score = 0.0f;
  uint32_t attr = kAttrNormal;
};

struct SpecialTokenIds {
  TokenId bos = kNoToken;
  TokenId eos = kNoToken;
  TokenId eot = kNoToken;
  TokenId eom = kNoToken;
  TokenId unk = kNoToken;
  TokenId sep = kNoToken;
  TokenId pad = kNoToken;
  TokenId mask = kNoToken;
  TokenId fim_pre = kNoToken;
  TokenId fim_suf = kNoToken;
  TokenId fim_mid = kNoToken;
  TokenId fim_pad = kNoToken;
  TokenId fim_rep = kNoToken;
  TokenId fim_sep = kNoToken;
};

struct VocabFlags {
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // SPM: prepend ' ' to text (and strip it when decoding)
  bool clean_spaces = false;      // decoder drops spaces before punctuation/contractions
  bool ignore_merges = false;     // BPE: a word that is a token is emitted whole
};

class Vocab {
 public:
  static absl::StatusOr<Vocab> FromGguf(const GgufFile& file);

  // Move-only: text_to_id_ views the strings owned by tokens_.
  Vocab(Vocab&&) = default;
  Vocab& operator=(Vocab&&) = default;
  Vocab(const Vocab&) = delete;
  Vocab& operator=(const Vocab&) = delete;

  VocabType type() const { return type_; }
  // tokenizer.ggml.pre (BPE), "" when absent.
  const std::string& pre_name() const { return pre_name_; }
  const VocabFlags& flags() const { return flags_; }
  const SpecialTokenIds& special() const { return special_; }

  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  bool Contains(TokenId id) const { return id >= 0 && id < size(); }
  const TokenData& token(TokenId id) const { return tokens_[id]; }
  uint32_t attr(TokenId id) const { return Contains(id) ? tokens_[id].attr : kAttrUndefined; }
  // The id whose text is exactly `text` (the last one, if duplicated), or kNoToken.
  TokenId Find(absl::string_view text) const;
  size_t max_token_length() const { return max_token_length_; }

  bool IsEog(TokenId id) const;
  // Control, user-defined and unknown tokens, longest text first: the order in which encoding
  // looks for them in raw text.
  const std::vector<TokenId>& special_tokens() const { return special_tokens_; }

 private:
  Vocab() = default;

  absl::Status LoadTokens(const GgufFile& file);
  absl::Status LoadSpecialIds(const GgufFile& file);
  void DetectEndOfGeneration();
  void ApplyModelAttributes(const GgufFile& file);
  void MakeControl(TokenId id);

  VocabType type_ = VocabType::kSpm;
  std::string pre_name_;
  VocabFlags flags_;
  SpecialTokenIds special_;
  std::vector<TokenData> tokens_;
  // Views into tokens_[i].text: a vector move keeps its elements in place, so they survive
  // moving the Vocab.
  absl::flat_hash_map<absl::string_view, TokenId> text_to_id_;
  size_t max_token_length_ = 0;
  std::vector<TokenId> eog_ids_;  // sorted; a handful of ids
  std::vector<TokenId> special_tokens_;
};

}  // namespace tandem
