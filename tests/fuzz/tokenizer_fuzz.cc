// Fuzz target: the tokenizers (SentencePiece, byte-level BPE with several pre-tokenizers,
// WordPiece) on arbitrary text, with and without special-token parsing, and back.
// The first byte picks the vocabulary and the flags; the rest is the text.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "model/gguf.h"
#include "model/tokenizer.h"

namespace {

std::vector<std::unique_ptr<tandem::Tokenizer>> LoadTokenizers() {
  const char* env = std::getenv("TANDEM_SHARED_DIR");
  const std::string shared = env ? env : TANDEM_SHARED_DIR;
  std::vector<std::unique_ptr<tandem::Tokenizer>> out;
  for (const char* name :
       {"ggml-vocab-llama-spm", "ggml-vocab-gpt-2", "ggml-vocab-llama-bpe", "ggml-vocab-bert-bge",
        "ggml-vocab-deepseek-coder", "ggml-vocab-falcon", "ggml-vocab-phi-3"}) {
    auto file = tandem::GgufFile::Open(shared + "/tokenizer/" + name + ".gguf");
    if (!file.ok()) std::abort();  // the fuzzer needs its vocabularies
    auto tokenizer = tandem::Tokenizer::FromGguf(**file);
    if (!tokenizer.ok()) std::abort();
    out.push_back(std::move(*tokenizer));
  }
  return out;
}

const std::vector<std::unique_ptr<tandem::Tokenizer>>& Tokenizers() {
  static const auto* tokenizers =
      new std::vector<std::unique_ptr<tandem::Tokenizer>>(LoadTokenizers());
  return *tokenizers;
}

}  // namespace

// Loading the vocabularies takes seconds: libFuzzer calls this before it times inputs.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)Tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* tokenizers = &Tokenizers();
  if (size == 0) return 0;
  const uint8_t pick = data[0];
  const tandem::Tokenizer& tok = *(*tokenizers)[pick % tokenizers->size()];
  const bool parse_special = pick & 0x80;
  const bool add_special = pick & 0x40;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::vector<tandem::TokenId> ids = tok.Encode(text, add_special, parse_special);
  for (tandem::TokenId id : ids) {
    if (id < 0 || id >= tok.n_vocab()) std::abort();  // Encode must yield vocabulary ids
    (void)tok.TokenToPiece(id, /*render_special=*/parse_special);
  }
  (void)tok.Decode(ids, /*remove_special=*/add_special, /*unparse_special=*/parse_special);
  // Ids from the bytes themselves, in range or not.
  std::vector<tandem::TokenId> raw;
  for (size_t i = 1; i + 4 <= size && raw.size() < 64; i += 4) {
    int32_t id;
    __builtin_memcpy(&id, data + i, 4);
    raw.push_back(id);
  }
  (void)tok.Decode(raw, /*remove_special=*/true, /*unparse_special=*/true);
  return 0;
}
