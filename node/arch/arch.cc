#include "node/arch/arch.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tandem {

absl::StatusOr<ArchSpec> ArchSpecFor(const Hparams& h) {
  static const std::pair<const char*, ArchSpec (*)(const Hparams&)> kSpecs[] = {
      {"llama", LlamaSpec},
      {"qwen2", Qwen2Spec},
      {"phi3", Phi3Spec},
      {"gemma2", Gemma2Spec},
  };
  for (const auto& [name, make] : kSpecs) {
    if (h.architecture == name) return make(h);
  }
  return absl::UnimplementedError(absl::StrCat(
      "architecture '", h.architecture,
      "' is not supported (supported: ", absl::StrJoin(SupportedArchitectures(), ", "), ")"));
}

}  // namespace tandem
