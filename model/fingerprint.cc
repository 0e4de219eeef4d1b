#include "model/fingerprint.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_format.h"

namespace tandem {
namespace {

// FNV-1a, 64 bit, in two lanes with different offsets for 128 bits of digest.
struct Fnv128 {
  uint64_t a = 0xcbf29ce484222325ull;
  uint64_t b = 0x84222325cbf29ce4ull;
  void Add(const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      a = (a ^ p[i]) * 0x100000001b3ull;
      b = (b ^ p[i] ^ 0x5a) * 0x100000001b3ull;
    }
  }
  void AddU64(uint64_t v) { Add(reinterpret_cast<const uint8_t*>(&v), sizeof(v)); }
};

}  // namespace

std::string ModelFingerprint(const GgufFile& file) {
  Fnv128 h;
  const uint8_t* base = file.mapping().data();
  h.AddU64(file.mapping().size());
  h.Add(base, file.data_offset());
  constexpr uint64_t kSample = 4096;
  for (const auto& t : file.tensors()) {
    uint64_t head = std::min(kSample, t.size_bytes);
    h.Add(t.data, head);
    if (t.size_bytes > kSample) {
      uint64_t tail = std::min(kSample, t.size_bytes - head);
      h.Add(t.data + t.size_bytes - tail, tail);
    }
    // A fault can map a large folio around the bytes read: unmap what was touched so a
    // node's resident memory stays its shard.
    file.mapping().DontNeed(static_cast<size_t>(t.data - base), t.size_bytes);
  }
  return absl::StrFormat("%016x%016x", h.a, h.b);
}

}  // namespace tandem
