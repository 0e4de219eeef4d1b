#include "model/tokenizer.h"

#include <cstdlib>

#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "base/status_macros.h"
#include "model/bpe_encoder.h"
#include "model/byte_level.h"
#include "model/special_partition.h"
#include "model/spm_encoder.h"
#include "model/unicode.h"
#include "model/wpm_encoder.h"

namespace tandem {
namespace {

constexpr char kSpaceEscape[] = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

// BPE token text back to bytes. A codepoint outside the byte alphabet is shown the way
// llama.cpp shows it, so that output stays comparable.
std::string ByteLevelDecode(const std::string& text) {
  std::string out;
  size_t offset = 0;
  while (offset < text.size()) {
    const uint32_t cpt = DecodeUtf8(text, &offset);
    const int byte = ByteLevelDecodeCodepoint(cpt);
    if (byte >= 0) {
      out.push_back(static_cast<char>(byte));
      continue;
    }
    out += "[UNK_BYTE_0x";
    for (char c : EncodeUtf8(cpt)) absl::StrAppendFormat(&out, "%02x", static_cast<uint8_t>(c));
    out += text + "]";
  }
  return out;
}

// Hugging Face's clean_up_tokenization_spaces as llama.cpp applies it: drop the space before
// ? ! . , ; turn " ' " into "'"; and attach 's 'm 're 've to the previous word.
std::string CleanSpaces(std::string text) {
  auto compact = [&text](auto&& keep_space_before) {
    if (text.empty()) return;
    size_t out = 1;
    for (size_t i = 1; i < text.size(); ++i) {
      if (text[i - 1] == ' ' && !keep_space_before(i)) --out;
      text[out++] = text[i];
    }
    text.resize(out);
  };
  compact([&](size_t i) {
    const char x = text[i];
    return !(x == '?' || x == '!' || x == '.' || x == ',');
  });
  // " ' " -> "'": removes both the space before and the one after.
  if (!text.empty()) {
    size_t out = 1;
    for (size_t i = 1; i < text.size(); ++i) {
      const char x = text[i];
      if (x == '\'' && i + 1 < text.size() && text[i - 1] == ' ' && text[i + 1] == ' ') {
        --out;
        text[++i] = '\0';  // the space after is skipped; its slot reads as NUL from now on
      }
      text[out++] = x;
    }
    text.resize(out);
  }
  compact([&](size_t i) {
    if (text[i] != '\'' || i + 1 >= text.size()) return true;
    const char x1 = text[i + 1];
    if (x1 == 's' || x1 == 'm') return false;
    if (i + 2 >= text.size()) return true;
    const char x2 = text[i + 2];
    return !((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e'));
  });
  return text;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& file) {
  TANDEM_ASSIGN_OR_RETURN(Vocab vocab, Vocab::FromGguf(file));
  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer(std::make_unique<Vocab>(std::move(vocab))));
  const Vocab& v = *tokenizer->vocab_;
  switch (v.type()) {
    case VocabType::kSpm:
      tokenizer->encoder_ = std::make_unique<SpmEncoder>(v);
      break;
    case VocabType::kBpe: {
      TANDEM_ASSIGN_OR_RETURN(tokenizer->encoder_, BpeEncoder::Create(v, file));
      break;
    }
    case VocabType::kWpm:
      tokenizer->encoder_ = std::make_unique<WpmEncoder>(v);
      break;
  }
  return tokenizer;
}

std::vector<TokenId> Tokenizer::Encode(const std::string& text, bool add_special,
                                       bool parse_special) const {
  const Vocab& v = *vocab_;
  const VocabFlags& flags = v.flags();
  const SpecialTokenIds& sp = v.special();
  std::vector<TokenId> out;
  const std::vector<TextFragment> fragments = PartitionSpecialTokens(v, text, parse_special);

  const bool add_bos = add_special && flags.add_bos && sp.bos != kNoToken;
  const bool add_eos = add_special && flags.add_eos && sp.eos != kNoToken;
  switch (v.type()) {
    case VocabType::kSpm: {
      if (add_bos) out.push_back(sp.bos);
      // SentencePiece treats the start of text, and text right after a special token, as the
      // start of a word.
      bool after_special = true;
      for (const TextFragment& f : fragments) {
        if (!f.is_text()) {
          out.push_back(f.token);
          after_special = true;
          continue;
        }
        std::string piece = text.substr(f.offset, f.length);
        if (flags.add_space_prefix && after_special) piece.insert(0, 1, ' ');
        encoder_->Encode(absl::StrReplaceAll(piece, {{" ", kSpaceEscape}}), &out);
        after_special = false;
      }
      if (add_eos) out.push_back(sp.eos);
      break;
    }
    case VocabType::kBpe:
    case VocabType::kWpm: {
      const bool is_wpm = v.type() == VocabType::kWpm;
      if (is_wpm ? (add_special && sp.bos != kNoToken) : add_bos) out.push_back(sp.bos);
      for (const TextFragment& f : fragments) {
        if (f.is_text()) {
          encoder_->Encode(absl::string_view(text).substr(f.offset, f.length), &out);
        } else {
          out.push_back(f.token);
        }
      }
      if (is_wpm) {
        if (add_special && sp.sep != kNoToken) out.push_back(sp.sep);
      } else if (add_eos) {
        out.push_back(sp.eos);
      }
      break;
    }
  }
  return out;
}

std::string Tokenizer::TokenToPiece(TokenId id, bool render_special) const {
  const Vocab& v = *vocab_;
  if (!v.Contains(id)) return "";
  const TokenData& token = v.token(id);
  const uint32_t attr = token.attr;
  if (!render_special && (attr & (kAttrUnknown | kAttrControl))) return "";
  // Other unlisted types (unused, undefined) render as nothing, like control tokens.
  if (attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return token.text;
  switch (v.type()) {
    case VocabType::kSpm:
    case VocabType::kWpm:
      if (attr & kAttrNormal) return absl::StrReplaceAll(token.text, {{kSpaceEscape, " "}});
      if ((attr & kAttrByte) && token.text.size() >= 5) {
        return std::string(
            1, static_cast<char>(std::strtol(token.text.substr(3, 2).c_str(), nullptr, 16)));
      }
      return "";
    case VocabType::kBpe:
      if (attr & kAttrNormal) return ByteLevelDecode(token.text);
      return "";
  }
  return "";
}

std::string Tokenizer::Decode(const std::vector<TokenId>& ids, bool remove_special,
                              bool unparse_special) const {
  const Vocab& v = *vocab_;
  const VocabFlags& flags = v.flags();
  size_t begin = 0;
  size_t end = ids.size();
  // The space SentencePiece added in front of the first word is not part of the text.
  bool remove_space = flags.add_space_prefix;
  if (remove_special && flags.add_bos && end > begin && ids[begin] == v.special().bos) {
    remove_space = false;
    ++begin;
  }
  if (remove_special && flags.add_eos && end > begin && ids[end - 1] == v.special().eos) --end;

  std::string text;
  for (size_t i = begin; i < end; ++i) {
    std::string piece = TokenToPiece(ids[i], unparse_special);
    // Only the very first token loses its space, even if it rendered as nothing.
    if (remove_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    remove_space = false;
    text += piece;
  }
  if (flags.clean_spaces) text = CleanSpaces(std::move(text));
  return text;
}

}  // namespace tandem
