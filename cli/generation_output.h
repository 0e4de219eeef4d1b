// The result of `tandem generate` / `tandem run`, printed the same way whichever engine
// produced it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tandem::cli {

struct GenerationOutput {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> ids;
  std::string text;
  uint64_t seed = 0;
  double prompt_ms = 0;
  double decode_ms = 0;
  int64_t n_decode_steps = 0;

  double prompt_tokens_per_s() const;
  double generated_tokens_per_s() const;
};

// One JSON object on stdout: prompt_ids, ids, text, seed, timings.
void PrintGenerationJson(const GenerationOutput& out);
// The closing newline on stdout and a timing line on stderr, after streamed text.
void PrintGenerationSummary(const GenerationOutput& out);

}  // namespace tandem::cli
