#include "node/kv_cache.h"

#include <new>

#include "absl/strings/str_cat.h"
#include "base/checked_math.h"

namespace tandem {
namespace {

absl::StatusOr<int64_t> FloatsPerTensor(int n_layers, int64_t n_ctx, int64_t n_embd_kv) {
  std::optional<int64_t> floats = CheckedProduct({n_layers, n_ctx, n_embd_kv, 2 * sizeof(float)});
  if (n_layers <= 0 || n_ctx <= 0 || n_embd_kv <= 0 || !floats) {
    return absl::ResourceExhaustedError(
        absl::StrCat("a KV cache of ", n_layers, " layers x ", n_ctx, " positions x ", n_embd_kv,
                     " values cannot be sized (non-positive or overflowing)"));
  }
  return *floats / static_cast<int64_t>(2 * sizeof(float));
}

}  // namespace

absl::StatusOr<uint64_t> KvCache::BytesFor(int n_layers, int64_t n_ctx, int64_t n_embd_kv) {
  absl::StatusOr<int64_t> floats = FloatsPerTensor(n_layers, n_ctx, n_embd_kv);
  if (!floats.ok()) return floats.status();
  return static_cast<uint64_t>(*floats) * 2 * sizeof(float);
}

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(int n_layers, int64_t n_ctx,
                                                         int64_t n_embd_kv) {
  absl::StatusOr<int64_t> floats = FloatsPerTensor(n_layers, n_ctx, n_embd_kv);
  if (!floats.ok()) return floats.status();
  try {
    // Default-initialised (not zeroed): large blocks are fresh anonymous pages.
    std::unique_ptr<float[]> k(new float[static_cast<size_t>(*floats)]);
    std::unique_ptr<float[]> v(new float[static_cast<size_t>(*floats)]);
    return std::unique_ptr<KvCache>(new KvCache(n_ctx, n_embd_kv, std::move(k), std::move(v)));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("out of memory for a KV cache of ", *floats * 2 * sizeof(float), " bytes"));
  }
}

}  // namespace tandem
