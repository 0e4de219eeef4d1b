// SHA-256 through OpenSSL's EVP interface: an incremental hasher (RAII, non-copyable) and
// the digest as bytes or lowercase hex.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace tandem {

using Sha256Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(absl::string_view bytes) { Update(bytes.data(), bytes.size()); }
  void UpdateU64(uint64_t v);  // little-endian, so the digest is the same on every host
  // Returns the digest; the hasher then starts over.
  Sha256Digest Finish();

 private:
  EVP_MD_CTX* ctx_;
};

std::string Sha256Hex(const Sha256Digest& digest);
// Parses exactly 64 lowercase hex digits; anything else is false.
bool ParseSha256Hex(absl::string_view hex, Sha256Digest* digest);

}  // namespace tandem
