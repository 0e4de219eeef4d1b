// Generation on a running cluster, filling the same output as the local engine.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "cli/generation_output.h"
#include "node/sampler.h"

namespace tandem::cli {

// Streams the text to stdout as it arrives when `stream` is true.
absl::Status RemoteGenerateText(const std::string& coordinator, const std::string& prompt,
                                int32_t n_predict, const SamplingParams& sampling, bool stop_at_eos,
                                bool stream, GenerationOutput* out);

}  // namespace tandem::cli
