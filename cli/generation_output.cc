#include "cli/generation_output.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace tandem::cli {

double GenerationOutput::prompt_tokens_per_s() const {
  return prompt_ms > 0 ? prompt_ids.size() / (prompt_ms / 1e3) : 0;
}

double GenerationOutput::generated_tokens_per_s() const {
  return decode_ms > 0 ? n_decode_steps / (decode_ms / 1e3) : 0;
}

void PrintGenerationJson(const GenerationOutput& o) {
  nlohmann::json j;
  j["prompt_ids"] = o.prompt_ids;
  j["ids"] = o.ids;
  j["text"] = o.text;
  j["seed"] = o.seed;
  j["timings"] = {{"prompt_tokens", o.prompt_ids.size()},
                  {"prompt_ms", o.prompt_ms},
                  {"prompt_tokens_per_s", o.prompt_tokens_per_s()},
                  {"generated_tokens", o.ids.size()},
                  {"decode_ms", o.decode_ms},
                  {"generated_tokens_per_s", o.generated_tokens_per_s()}};
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  std::fflush(stdout);
}

void PrintGenerationSummary(const GenerationOutput& o) {
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr, "prompt: %zu tokens, %.1f tokens/s; generated: %zu tokens, %.1f tokens/s\n",
               o.prompt_ids.size(), o.prompt_tokens_per_s(), o.ids.size(),
               o.generated_tokens_per_s());
}

}  // namespace tandem::cli
