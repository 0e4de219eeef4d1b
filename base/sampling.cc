#include "base/sampling.h"

#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tandem {

absl::Status ValidateSamplingParams(const SamplingParams& p) {
  auto bad = [](const std::string& what) { return absl::InvalidArgumentError(what); };
  if (!std::isfinite(p.temperature) || p.temperature < 0) {
    return bad(absl::StrCat("temperature must be >= 0, got ", p.temperature));
  }
  if (!std::isfinite(p.top_p) || p.top_p <= 0 || p.top_p > 1) {
    return bad(absl::StrCat("top-p must be in (0, 1], got ", p.top_p));
  }
  if (!std::isfinite(p.min_p) || p.min_p < 0 || p.min_p > 1) {
    return bad(absl::StrCat("min-p must be in [0, 1], got ", p.min_p));
  }
  if (!std::isfinite(p.repeat_penalty) || p.repeat_penalty <= 0) {
    return bad(absl::StrCat("repeat-penalty must be > 0, got ", p.repeat_penalty));
  }
  if (p.top_k < 0) return bad(absl::StrCat("top-k must be >= 0, got ", p.top_k));
  if (p.repeat_last_n < 0 || p.repeat_last_n > kMaxRepeatLastN) {
    return bad(
        absl::StrCat("repeat-last-n must be in [0, ", kMaxRepeatLastN, "], got ", p.repeat_last_n));
  }
  for (auto [name, v] : {std::pair{"presence-penalty", p.presence_penalty},
                         std::pair{"frequency-penalty", p.frequency_penalty}}) {
    if (!std::isfinite(v) || v < -2 || v > 2) {
      return bad(absl::StrCat(name, " must be in [-2, 2], got ", v));
    }
  }
  if (p.top_logprobs < 0 || p.top_logprobs > kMaxTopLogprobs) {
    return bad(
        absl::StrCat("top-logprobs must be in [0, ", kMaxTopLogprobs, "], got ", p.top_logprobs));
  }
  return absl::OkStatus();
}

}  // namespace tandem
