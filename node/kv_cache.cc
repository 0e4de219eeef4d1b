#include "node/kv_cache.h"

namespace tandem {

KvCache::KvCache(int n_layers, int64_t n_ctx, int64_t n_embd_kv)
    : n_ctx_(n_ctx),
      n_embd_kv_(n_embd_kv),
      // Default-initialised (not zeroed): large blocks are fresh anonymous pages.
      k_(new float[static_cast<size_t>(n_layers) * n_ctx * n_embd_kv]),
      v_(new float[static_cast<size_t>(n_layers) * n_ctx * n_embd_kv]) {}

}  // namespace tandem
