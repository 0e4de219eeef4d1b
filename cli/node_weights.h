// Where a node's weights come from: the model file it was given (--model), or, without one,
// the coordinator's manifest and a cache its stages' tensors are fetched into (--cache-dir).
// Either way the node serves the Tensors service to its peers, from that file or cache.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "fetch/model_fetcher.h"
#include "fetch/tensor_service.h"
#include "model/gguf.h"
#include "node/node_service.h"
#include "tandem.pb.h"

namespace tandem::cli {

struct NodeWeightsOptions {
  std::string model;      // a GGUF file; empty: fetch
  std::string cache_dir;  // where fetched tensors live
  std::string coordinator;
  double fetch_rate = 0;         // bytes/s; 0: unlimited
  uint64_t cache_max_bytes = 0;  // 0: the cache grows as it must
};

struct NodeWeights {
  // The model file, or the fetched model's header (no tensor data).
  std::shared_ptr<const GgufFile> model;
  std::unique_ptr<fetch::ModelFetcher> fetcher;  // null with a model file
  std::unique_ptr<fetch::TensorService> tensors;
};

// Opens the model file or the fetched model, and fills the request's fingerprint, model
// path and (when fetching) what the cache holds.
absl::StatusOr<NodeWeights> OpenNodeWeights(const NodeWeightsOptions& options,
                                            v1::RegisterRequest* request);

// For a fetching node: NodeOptions::stage_file, fetching with a progress bar on stderr.
void UseFetchedStages(NodeWeights& weights, NodeOptions* options);

}  // namespace tandem::cli
