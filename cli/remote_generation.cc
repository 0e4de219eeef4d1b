#include "cli/remote_generation.h"

#include <cstdio>

#include "net/client.h"
#include "net/convert.h"

namespace tandem::cli {

absl::Status RemoteGenerateText(const std::string& coordinator, const std::string& prompt,
                                int32_t n_predict, const SamplingParams& sampling, bool stop_at_eos,
                                bool stream, GenerationOutput* out) {
  v1::GenerateRequest req;
  req.set_prompt(prompt);
  req.set_n_predict(n_predict);
  *req.mutable_sampling() = SamplingToProto(sampling);
  req.set_stop_at_eos(stop_at_eos);
  auto result = RemoteGenerate(coordinator, req, [&](int32_t, const std::string& piece) {
    if (!stream) return;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  if (!result.ok()) return result.status();
  out->prompt_ids = result->prompt_ids;
  out->ids = result->ids;
  out->text = result->text;
  out->prompt_ms = result->prompt_ms;
  out->decode_ms = result->decode_ms;
  out->n_decode_steps = result->n_decode_steps;
  return absl::OkStatus();
}

}  // namespace tandem::cli
