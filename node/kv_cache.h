// Keys and values of one session for the layers of one shard, f32.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

namespace tandem {

class KvCache {
 public:
  // Sizes the cache with checked arithmetic; an overflowing size or a failed allocation
  // is RESOURCE_EXHAUSTED, never a crash. Memory comes from the OS lazily: only positions
  // written become resident.
  static absl::StatusOr<std::unique_ptr<KvCache>> Create(int n_layers, int64_t n_ctx,
                                                         int64_t n_embd_kv);
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_embd_kv() const { return n_embd_kv_; }
  // (n_ctx, n_embd_kv) rows for a shard-local layer index.
  float* keys(int local_layer) { return k_.get() + Offset(local_layer); }
  float* values(int local_layer) { return v_.get() + Offset(local_layer); }

  // Bytes of keys and values together; an error when the size overflows.
  static absl::StatusOr<uint64_t> BytesFor(int n_layers, int64_t n_ctx, int64_t n_embd_kv);

 private:
  KvCache(int64_t n_ctx, int64_t n_embd_kv, std::unique_ptr<float[]> k, std::unique_ptr<float[]> v)
      : n_ctx_(n_ctx), n_embd_kv_(n_embd_kv), k_(std::move(k)), v_(std::move(v)) {}
  size_t Offset(int l) const { return static_cast<size_t>(l) * n_ctx_ * n_embd_kv_; }
  int64_t n_ctx_;
  int64_t n_embd_kv_;
  std::unique_ptr<float[]> k_;
  std::unique_ptr<float[]> v_;
};

}  // namespace tandem
