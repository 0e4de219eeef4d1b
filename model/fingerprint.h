// A model fingerprint: two processes agree on it only when they hold the same model.
#pragma once

#include <string>

#include "model/gguf.h"

namespace tandem {

// Hex digest over the file size, the header (metadata and tensor table) and a sample of
// every tensor's bytes (its first and last 4 KiB), so files that differ only in their
// weights (make-model with another seed) differ too. Reads a few MiB at most.
std::string ModelFingerprint(const GgufFile& file);

}  // namespace tandem
