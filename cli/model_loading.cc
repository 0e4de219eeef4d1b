#include "cli/model_loading.h"

#include <cstdio>

#include "base/status_macros.h"

namespace tandem::cli {

absl::StatusOr<LoadedModel> LoadModel(const std::string& path) {
  LoadedModel m;
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  m.file = std::move(file);
  TANDEM_ASSIGN_OR_RETURN(m.hparams, ReadHparams(*m.file));
  TANDEM_ASSIGN_OR_RETURN(m.tokenizer, Tokenizer::FromGguf(*m.file));
  return m;
}

int ReportError(const absl::Status& status) {
  std::fprintf(stderr, "tandem: error: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace tandem::cli
