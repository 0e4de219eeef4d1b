#include "model/digest_cache.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tandem {
namespace {

constexpr absl::string_view kSuffix = ".tandem-sha256";
constexpr absl::string_view kFingerprintLabel = "fingerprint ";
constexpr size_t kHexLine = 2 * sizeof(Sha256Digest) + 1;  // 64 hex digits and '\n'

// Everything before the digests: the format's name and version, then the key. The
// parser compares it byte for byte, so a path with unusual characters needs no escaping.
std::string KeyLines(const DigestCacheKey& key, size_t n_tensors) {
  const FileIdentity& id = key.identity;
  return absl::StrCat("tandem-sha256 1\npath ", key.absolute_path, "\ndevice ", id.device,
                      "\ninode ", id.inode, "\nsize ", id.size, "\nmtime_ns ", id.mtime_ns,
                      "\ntensors ", n_tensors, "\n");
}

size_t SidecarSize(const DigestCacheKey& key, size_t n_tensors) {
  return KeyLines(key, n_tensors).size() + n_tensors * kHexLine + kFingerprintLabel.size() +
         kHexLine;
}

bool ParseHexLine(absl::string_view line, Sha256Digest* digest) {
  return line.size() == kHexLine && line.back() == '\n' &&
         ParseSha256Hex(line.substr(0, kHexLine - 1), digest);
}

std::string UserCacheDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return absl::StrCat(xdg, "/tandem");
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] == '/') return absl::StrCat(home, "/.cache/tandem");
  return "";
}

// Inside a cache folder the sidecar is named for a hash of the model's path, so models
// with the same file name in different folders do not share one.
std::string CacheDirSidecar(const std::string& dir, const std::string& absolute_path) {
  Sha256 h;
  h.Update(absolute_path);
  return absl::StrCat(dir, "/", Sha256Hex(h.Finish()).substr(0, 32), kSuffix);
}

absl::Status WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat(tmp, ": cannot create"));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      return absl::DataLossError(absl::StrCat(tmp, ": cannot write"));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot rename into place: ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

std::string FormatDigestSidecar(const DigestCacheKey& key, const CachedDigests& digests) {
  std::string text = KeyLines(key, digests.tensor_digests.size());
  for (const Sha256Digest& d : digests.tensor_digests) absl::StrAppend(&text, Sha256Hex(d), "\n");
  absl::StrAppend(&text, kFingerprintLabel, Sha256Hex(digests.fingerprint), "\n");
  return text;
}

std::optional<CachedDigests> ParseDigestSidecar(absl::string_view text, const DigestCacheKey& key,
                                                size_t n_tensors) {
  const std::string expected_key = KeyLines(key, n_tensors);
  if (text.size() != SidecarSize(key, n_tensors) || !absl::StartsWith(text, expected_key)) {
    return std::nullopt;
  }
  text.remove_prefix(expected_key.size());
  CachedDigests digests;
  digests.tensor_digests.resize(n_tensors);
  for (Sha256Digest& d : digests.tensor_digests) {
    if (!ParseHexLine(text.substr(0, kHexLine), &d)) return std::nullopt;
    text.remove_prefix(kHexLine);
  }
  if (!absl::StartsWith(text, kFingerprintLabel)) return std::nullopt;
  text.remove_prefix(kFingerprintLabel.size());
  if (!ParseHexLine(text, &digests.fingerprint)) return std::nullopt;
  return digests;
}

std::vector<std::string> DigestSidecarPaths(const std::string& absolute_path,
                                            const std::string& cache_dir) {
  // Never beside the model: model folders are often shared or read-only by intent (a
  // process running as root could write into them anyway).
  if (!cache_dir.empty()) return {CacheDirSidecar(cache_dir, absolute_path)};
  const std::string user_dir = UserCacheDir();
  if (user_dir.empty()) return {};
  return {CacheDirSidecar(user_dir, absolute_path)};
}

std::optional<CachedDigests> ReadDigestSidecar(const DigestCacheKey& key, size_t n_tensors,
                                               const std::string& cache_dir) {
  const size_t size = SidecarSize(key, n_tensors);
  for (const std::string& path : DigestSidecarPaths(key.absolute_path, cache_dir)) {
    std::ifstream in(path, std::ios::binary);
    if (!in) continue;
    // Read one byte more than a valid sidecar holds, so a longer file is caught without
    // reading all of it.
    std::string text(size + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    if (auto digests = ParseDigestSidecar(text, key, n_tensors)) return digests;
  }
  return std::nullopt;
}

absl::Status WriteDigestSidecar(const DigestCacheKey& key, const CachedDigests& digests,
                                const std::string& cache_dir) {
  const std::string text = FormatDigestSidecar(key, digests);
  const std::vector<std::string> paths = DigestSidecarPaths(key.absolute_path, cache_dir);
  absl::Status status = absl::NotFoundError("no place for the digest sidecar");
  for (size_t i = 0; i < paths.size(); ++i) {
    // Every place is a cache folder of ours to create.
    std::error_code ignored;
    std::filesystem::create_directories(std::filesystem::path(paths[i]).parent_path(), ignored);
    status = WriteAtomically(paths[i], text);
    if (status.ok()) return status;
  }
  return status;
}

}  // namespace tandem
