// What every command that runs a model loads: the GGUF, its hyper-parameters, the
// tokenizer. One clear error when any of it fails.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/gguf.h"
#include "model/hparams.h"
#include "model/tokenizer.h"

namespace tandem::cli {

struct LoadedModel {
  std::shared_ptr<const GgufFile> file;
  Hparams hparams;
  std::unique_ptr<Tokenizer> tokenizer;
};

absl::StatusOr<LoadedModel> LoadModel(const std::string& path);

// Prints "tandem: error: <message>" on stderr and returns the exit code 1.
int ReportError(const absl::Status& status);

}  // namespace tandem::cli
