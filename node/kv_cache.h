// Keys and values of one session for the layers of one shard, f32.
#pragma once

#include <cstdint>
#include <memory>

namespace tandem {

class KvCache {
 public:
  // Memory comes from the OS lazily: only positions written become resident.
  KvCache(int n_layers, int64_t n_ctx, int64_t n_embd_kv);
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_embd_kv() const { return n_embd_kv_; }
  // (n_ctx, n_embd_kv) rows for a shard-local layer index.
  float* keys(int local_layer) { return k_.get() + Offset(local_layer); }
  float* values(int local_layer) { return v_.get() + Offset(local_layer); }

  static uint64_t BytesFor(int n_layers, int64_t n_ctx, int64_t n_embd_kv) {
    return 2ull * n_layers * n_ctx * n_embd_kv * sizeof(float);
  }

 private:
  size_t Offset(int l) const { return static_cast<size_t>(l) * n_ctx_ * n_embd_kv_; }
  int64_t n_ctx_;
  int64_t n_embd_kv_;
  std::unique_ptr<float[]> k_;
  std::unique_ptr<float[]> v_;
};

}  // namespace tandem
