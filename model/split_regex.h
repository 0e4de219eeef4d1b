// A small backtracking regex engine over codepoints, just large enough for the pre-tokenizer
// patterns that llama.cpp uses (std::regex cannot match \p{L}). Semantics follow ECMAScript as
// std::regex implements it: leftmost-first alternation, greedy quantifiers, `$` at the end of
// the searched range only, and `\s` limited to ASCII whitespace (callers map other whitespace
// to U+000B first, as llama.cpp does).
//
// Supported: literals, `[...]` / `[^...]` with ranges, `\s \S \d \p{L} \p{N} \p{P}`, `\r \n \t`
// and escaped punctuation, groups `(...)`, `(?:...)`, `(?i:...)` (ASCII case folding),
// lookahead `(?=...)` / `(?!...)`, quantifiers `? * + {n} {n,} {n,m}` (greedy), and `$`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tandem {

class SplitRegex {
 public:
  // The text to search: codepoints and their CodepointFlags, both `size` long.
  struct Input {
    const uint32_t* cpts = nullptr;
    const uint16_t* flags = nullptr;
  };

  static absl::StatusOr<SplitRegex> Compile(absl::string_view pattern);

  // Splits [begin, end) of `input` at every non-empty match: appends, in order, the lengths of
  // the unmatched gaps and of the matches. The range is searched as if it were the whole text.
  void Split(const Input& input, size_t begin, size_t end, std::vector<size_t>* lengths) const;

  // The end of the match that starts exactly at `pos` in [begin, end), or `pos` if none.
  size_t MatchAt(const Input& input, size_t begin, size_t end, size_t pos) const;

  const std::string& pattern() const { return pattern_; }

 private:
  friend class SplitRegexCompiler;

  struct CharClass {
    std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive
    uint16_t flag_mask = 0;                             // members by CodepointFlags
    bool negated = false;

    bool Matches(uint32_t cpt, uint16_t flags) const;
  };

  enum class Op : uint8_t {
    kClass,      // one codepoint of classes_[arg]
    kRun,        // classes_[arg] repeated min..max times, greedy
    kSplit,      // try `x` first, then `y`
    kJump,       // go to `x`
    kLookahead,  // sub-program at `x` must (not, if `negated`) match here; continue at `y`
    kEnd,        // end of the searched range
    kMatch,
  };

  struct Inst {
    Op op = Op::kMatch;
    bool negated = false;
    int32_t arg = 0;
    int32_t x = 0;
    int32_t y = 0;
    uint32_t min = 0;
    uint32_t max = 0;
  };

  // Runs the program from `pc` at `pos`; returns the match end or SIZE_MAX.
  size_t Run(const Input& input, size_t end, int32_t pc, size_t pos) const;

  std::string pattern_;
  std::vector<CharClass> classes_;
  std::vector<Inst> program_;
};

}  // namespace tandem
