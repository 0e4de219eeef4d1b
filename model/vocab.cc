#include "model/vocab.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/pretokenizer.h"

namespace tandem {
namespace {

constexpr char kModelKey[] = "tokenizer.ggml.model";
constexpr char kPreKey[] = "tokenizer.ggml.pre";
constexpr char kTokensKey[] = "tokenizer.ggml.tokens";
constexpr char kScoresKey[] = "tokenizer.ggml.scores";
constexpr char kTokenTypeKey[] = "tokenizer.ggml.token_type";

// tokenizer.ggml.token_type values (gguf-py's TokenType).
enum GgufTokenType : int64_t {
  kTypeNormal = 1,
  kTypeUnknown = 2,
  kTypeControl = 3,
  kTypeUserDefined = 4,
  kTypeUnused = 5,
  kTypeByte = 6,
};

uint32_t AttrFromGgufType(int64_t type) {
  switch (type) {
    case kTypeNormal:
      return kAttrNormal;
    case kTypeUnknown:
      return kAttrUnknown;
    case kTypeControl:
      return kAttrControl;
    case kTypeUserDefined:
      return kAttrUserDefined;
    case kTypeUnused:
      return kAttrUnused;
    case kTypeByte:
      return kAttrByte;
    default:
      return kAttrUndefined;
  }
}

}  // namespace

absl::StatusOr<Vocab> Vocab::FromGguf(const GgufFile& file) {
  Vocab vocab;
  TANDEM_ASSIGN_OR_RETURN(const std::string model, file.GetString(kModelKey));
  SpecialTokenIds& sp = vocab.special_;
  VocabFlags& flags = vocab.flags_;
  // Per-type defaults, as llama.cpp sets them before reading the optional keys.
  if (model == "llama") {
    vocab.type_ = VocabType::kSpm;
    sp.bos = 1;
    sp.eos = 2;
    sp.unk = 0;
    flags.add_space_prefix = true;
    flags.add_bos = true;
  } else if (model == "gpt2") {
    vocab.type_ = VocabType::kBpe;
    sp.bos = 11;
    sp.eos = 11;
    if (const GgufValue* pre = file.Find(kPreKey)) {
      TANDEM_ASSIGN_OR_RETURN(vocab.pre_name_, pre->AsString(kPreKey));
    }
    TANDEM_ASSIGN_OR_RETURN(const BpePreset preset, BpePresetForName(vocab.pre_name_));
    flags.clean_spaces = preset.clean_spaces;
    flags.ignore_merges = preset.ignore_merges;
    flags.add_bos = preset.add_bos;
    if (preset.bos_none) sp.bos = kNoToken;
  } else if (model == "bert") {
    vocab.type_ = VocabType::kWpm;
    sp.bos = 101;  // [CLS]
    sp.unk = 100;
    sp.sep = 102;
    sp.pad = 0;
    sp.mask = 103;
    flags.clean_spaces = true;
    flags.add_bos = true;
  } else {
    return absl::UnimplementedError(
        absl::StrCat("unsupported tokenizer model '", model, "' (", kModelKey, ")"));
  }
  TANDEM_ASSIGN_OR_RETURN(flags.add_space_prefix,
                          file.GetBool("tokenizer.ggml.add_space_prefix", flags.add_space_prefix));
  TANDEM_RETURN_IF_ERROR(vocab.LoadTokens(file));
  TANDEM_RETURN_IF_ERROR(vocab.LoadSpecialIds(file));
  TANDEM_ASSIGN_OR_RETURN(flags.add_bos,
                          file.GetBool("tokenizer.ggml.add_bos_token", flags.add_bos));
  TANDEM_ASSIGN_OR_RETURN(flags.add_eos,
                          file.GetBool("tokenizer.ggml.add_eos_token", flags.add_eos));
  vocab.DetectEndOfGeneration();

  for (TokenId id = 0; id < vocab.size(); ++id) {
    if (vocab.tokens_[id].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      vocab.special_tokens_.push_back(id);
    }
  }
  std::stable_sort(vocab.special_tokens_.begin(), vocab.special_tokens_.end(),
                   [&](TokenId a, TokenId b) {
                     return vocab.tokens_[a].text.size() > vocab.tokens_[b].text.size();
                   });
  vocab.ApplyModelAttributes(file);
  return vocab;
}

absl::Status Vocab::LoadTokens(const GgufFile& file) {
  const GgufValue* tokens_value = file.Find(kTokensKey);
  if (tokens_value == nullptr) {
    return absl::NotFoundError(absl::StrCat("missing metadata key '", kTokensKey, "'"));
  }
  TANDEM_ASSIGN_OR_RETURN(std::vector<std::string> texts, tokens_value->AsStringArray(kTokensKey));
  if (texts.empty() || texts.size() > static_cast<size_t>(std::numeric_limits<TokenId>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", kTokensKey, "' has an invalid size ", texts.size()));
  }
  std::vector<float> scores;
  if (const GgufValue* v = file.Find(kScoresKey)) {
    TANDEM_ASSIGN_OR_RETURN(scores, v->AsFloatArray(kScoresKey));
    if (scores.size() != texts.size()) {
      return absl::InvalidArgumentError(absl::StrCat("'", kScoresKey, "' has ", scores.size(),
                                                     " entries for ", texts.size(), " tokens"));
    }
  }
  std::vector<int64_t> types;
  if (const GgufValue* v = file.Find(kTokenTypeKey)) {
    TANDEM_ASSIGN_OR_RETURN(types, v->AsIntArray(kTokenTypeKey));
    if (types.size() != texts.size()) {
      return absl::InvalidArgumentError(absl::StrCat("'", kTokenTypeKey, "' has ", types.size(),
                                                     " entries for ", texts.size(), " tokens"));
    }
  }
  tokens_.resize(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    TokenData& token = tokens_[i];
    token.text = std::move(texts[i]);
    // An empty text could never be matched and would break special-token search.
    if (token.text.empty()) token.text = absl::StrCat("[EMPTY_", i, "]");
    token.score = scores.empty() ? 0.0f : scores[i];
    token.attr = types.empty() ? kAttrNormal : AttrFromGgufType(types[i]);
    max_token_length_ = std::max(max_token_length_, token.text.size());
  }
  // Built only once tokens_ no longer changes size, since the keys view its strings.
  text_to_id_.reserve(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i) {
    text_to_id_[tokens_[i].text] = static_cast<TokenId>(i);  // a duplicate text keeps the last id
  }
  return absl::OkStatus();
}

absl::Status Vocab::LoadSpecialIds(const GgufFile& file) {
  const std::pair<const char*, TokenId*> keys[] = {
      {"tokenizer.ggml.bos_token_id", &special_.bos},
      {"tokenizer.ggml.eos_token_id", &special_.eos},
      {"tokenizer.ggml.eot_token_id", &special_.eot},
      {"tokenizer.ggml.eom_token_id", &special_.eom},
      {"tokenizer.ggml.unknown_token_id", &special_.unk},
      {"tokenizer.ggml.seperator_token_id", &special_.sep},  // sic: gguf-py's spelling
      {"tokenizer.ggml.padding_token_id", &special_.pad},
      {"tokenizer.ggml.mask_token_id", &special_.mask},
      {"tokenizer.ggml.fim_pre_token_id", &special_.fim_pre},
      {"tokenizer.ggml.fim_suf_token_id", &special_.fim_suf},
      {"tokenizer.ggml.fim_mid_token_id", &special_.fim_mid},
      {"tokenizer.ggml.fim_pad_token_id", &special_.fim_pad},
      {"tokenizer.ggml.fim_rep_token_id", &special_.fim_rep},
      {"tokenizer.ggml.fim_sep_token_id", &special_.fim_sep},
  };
  for (const auto& [key, id] : keys) {
    const GgufValue* value = file.Find(key);
    if (value == nullptr) continue;
    TANDEM_ASSIGN_OR_RETURN(const int64_t raw, value->AsInt(key));
    if (raw < 0 || raw == 0xFFFFFFFF) {
      *id = kNoToken;  // written as -1 / UINT32_MAX: explicitly none
    } else if (raw < size()) {
      *id = static_cast<TokenId>(raw);
    }
    // Any other out-of-range id keeps the type's default, as llama.cpp does.
  }
  return absl::OkStatus();
}

// GGUF does not say which tokens end a turn, so llama.cpp recognises them by text; a token
// found this way is made a control token so that it is neither parsed nor printed by default.
void Vocab::DetectEndOfGeneration() {
  struct ByText {
    TokenId* id;
    std::initializer_list<const char*> texts;
  };
  const ByText detections[] = {
      {&special_.eot,
       {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>",
        "<｜end▁of▁sentence｜>"}},
      {&special_.eom, {"<|eom_id|>"}},
      {&special_.fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", "▁<PRE>"}},
      {&special_.fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>", "▁<SUF>"}},
      {&special_.fim_mid, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>", "▁<MID>"}},
      {&special_.fim_pad, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"}},
      {&special_.fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"}},
      {&special_.fim_sep, {"<|file_sep|>", "<file_sep>", "<|file_separator|>"}},
  };
  for (const ByText& d : detections) {
    if (*d.id != kNoToken) continue;
    for (const char* text : d.texts) {
      const TokenId id = Find(text);
      if (id == kNoToken) continue;
      *d.id = id;
      MakeControl(id);
      break;
    }
  }

  auto add_eog = [&](TokenId id) {
    if (id != kNoToken) eog_ids_.push_back(id);
  };
  add_eog(special_.fim_pad);
  add_eog(special_.fim_rep);
  add_eog(special_.fim_sep);
  for (const char* text : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                           "<|eom_id|>", "<EOT>", "_<EOT>"}) {
    const TokenId id = Find(text);
    if (id == kNoToken) continue;
    add_eog(id);
    MakeControl(id);
  }
  add_eog(special_.eos);
  add_eog(special_.eot);
  add_eog(special_.eom);
  std::sort(eog_ids_.begin(), eog_ids_.end());
  eog_ids_.erase(std::unique(eog_ids_.begin(), eog_ids_.end()), eog_ids_.end());
}

// Whitespace stripping around special tokens is not in GGUF; llama.cpp hard-codes it by name.
void Vocab::ApplyModelAttributes(const GgufFile& file) {
  std::string name = file.GetString("general.name").value_or("");
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  auto set_attr = [&](const char* text, uint32_t attr, bool on) {
    const TokenId id = Find(text);
    if (id == kNoToken) return;
    tokens_[id].attr = on ? (tokens_[id].attr | attr) : (tokens_[id].attr & ~attr);
  };
  for (const char* jina : {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) {
    if (pre_name_.find(jina) != std::string::npos) {
      set_attr("<mask>", kAttrLstrip, true);
      return;
    }
  }
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (TokenId id : special_tokens_) tokens_[id].attr |= kAttrRstrip;
    set_attr("</s>", kAttrRstrip, true);
    for (const char* text : {"<unk>", "<s>", "<|endoftext|>"}) set_attr(text, kAttrRstrip, false);
  }
}

void Vocab::MakeControl(TokenId id) {
  if (!(tokens_[id].attr & kAttrControl)) tokens_[id].attr = kAttrControl;
}

TokenId Vocab::Find(absl::string_view text) const {
  auto it = text_to_id_.find(text);
  return it == text_to_id_.end() ? kNoToken : it->second;
}

bool Vocab::IsEog(TokenId id) const {
  return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}

}  // namespace tandem
