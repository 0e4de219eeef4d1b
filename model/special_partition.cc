#include "model/special_partition.h"

#include "absl/strings/string_view.h"

namespace tandem {
namespace {

// C-locale isspace, which is what llama.cpp strips with.
bool IsAsciiSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Cuts one text fragment at every occurrence of `id`'s text and appends the pieces.
void SplitFragment(const Vocab& vocab, const std::string& text, TokenId id,
                   const TextFragment& fragment, std::vector<TextFragment>* out) {
  const TokenData& token = vocab.token(id);
  const absl::string_view needle = token.text;
  size_t begin = fragment.offset;
  size_t end = fragment.offset + fragment.length;
  while (begin < end) {
    const size_t found = absl::string_view(text).substr(begin, end - begin).find(needle);
    if (found == absl::string_view::npos) break;
    const size_t match = begin + found;
    size_t left_end = match;
    if (token.attr & kAttrLstrip) {
      while (left_end > begin && IsAsciiSpace(text[left_end - 1])) --left_end;
    }
    if (left_end > begin) out->push_back({kNoToken, begin, left_end - begin});
    out->push_back({id, 0, 0});
    begin = match + needle.size();
    if (token.attr & kAttrRstrip) {
      while (begin < end && IsAsciiSpace(text[begin])) ++begin;
    }
  }
  if (begin < end) out->push_back({kNoToken, begin, end - begin});
}

}  // namespace

std::vector<TextFragment> PartitionSpecialTokens(const Vocab& vocab, const std::string& text,
                                                 bool parse_special) {
  std::vector<TextFragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({kNoToken, 0, text.size()});
  std::vector<TextFragment> next;
  for (TokenId id : vocab.special_tokens()) {
    const uint32_t attr = vocab.token(id).attr;
    // User-defined tokens are split out even without parse_special, as Hugging Face does.
    if (!parse_special && (attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string& needle = vocab.token(id).text;
    bool any = false;
    for (const TextFragment& f : fragments) {
      if (f.is_text() && f.length >= needle.size() &&
          absl::string_view(text).substr(f.offset, f.length).find(needle) !=
              absl::string_view::npos) {
        any = true;
        break;
      }
    }
    if (!any) continue;
    next.clear();
    for (const TextFragment& f : fragments) {
      if (f.is_text()) {
        SplitFragment(vocab, text, id, f, &next);
      } else {
        next.push_back(f);
      }
    }
    fragments.swap(next);
  }
  return fragments;
}

}  // namespace tandem
