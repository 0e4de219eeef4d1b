// Fuzz target: the GGUF reader and what is read from it first (hyper-parameters, the
// vocabulary and tokenizer), on arbitrary bytes. Nothing may crash, leak or hang; bad
// bytes are errors.
#include <cstdint>
#include <vector>

#include "model/gguf.h"
#include "model/hparams.h"
#include "model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = tandem::GgufFile::FromBytes("fuzz.gguf", std::vector<uint8_t>(data, data + size));
  if (!file.ok()) return 0;
  for (const auto& [key, value] : (*file)->metadata()) (void)value.DebugString();
  for (const auto& t : (*file)->tensors()) {
    (void)t.ShapeString();
    (void)(*file)->GetTensor(t.name, t.dims);
  }
  (void)tandem::ReadHparams(**file);
  auto tokenizer = tandem::Tokenizer::FromGguf(**file);
  if (!tokenizer.ok()) return 0;
  const auto ids = (*tokenizer)
                       ->Encode("Hello world! <s> 123 \xe2\x96\x81x", /*add_special=*/true,
                                /*parse_special=*/true);
  (void)(*tokenizer)->Decode(ids, /*remove_special=*/false, /*unparse_special=*/true);
  for (tandem::TokenId id = -1; id < 64; ++id) (void)(*tokenizer)->TokenToPiece(id, true);
  return 0;
}
