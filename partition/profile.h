// What the planner is given: the model's per-layer costs, the nodes' measured
// capabilities, and what the operator asks for. Plain data, filled by callers
// (the GGUF-reading CLI, the coordinator's node registry); nothing here does I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tandem::partition {

// Costs of one transformer layer. Per-token work is for one generated token
// (a matrix-vector pass over the layer's weights).
struct LayerProfile {
  uint64_t weight_bytes = 0;        // resident once the layer is loaded
  uint64_t kv_bytes_per_token = 0;  // K and V for one position of one session
  double flops_per_token = 0;
  double bytes_read_per_token = 0;  // weights streamed from memory per token
};

// Work that is not a layer but is pinned to one end of the pipeline.
struct EndpointProfile {
  uint64_t weight_bytes = 0;
  double flops_per_token = 0;
  double bytes_read_per_token = 0;
};

struct ModelProfile {
  std::vector<LayerProfile> layers;
  EndpointProfile embedding;  // token embedding lookup, on the first stage
  EndpointProfile head;       // output norm + output projection, on the last stage
  // True when the head reuses the embedding matrix (tied weights): a node that is
  // both first and last stage holds that matrix once, not twice.
  bool head_shares_embedding_weights = false;
  // Bytes of one token's activation crossing a hop (n_embd * 4 for the f32 wire).
  double activation_bytes_per_token = 0;
};

// One machine as measured. The link numbers describe the node's own connection to
// the others; see cost_model.h for how two nodes' links combine into a hop.
struct NodeProfile {
  std::string name;
  uint64_t memory_bytes = 0;    // usable for the model, before headroom
  double memory_bandwidth = 0;  // bytes/s, streaming read
  double flops_per_second = 0;  // matrix-vector throughput
  double link_rtt_seconds = 0;  // round trip to the other nodes
  double link_bandwidth = 0;    // bytes/s
  // Bytes/s the node's weight fetches measured (a transfer of many streams, checked and
  // written to its cache); 0: not measured, link_bandwidth stands in.
  double fetch_bandwidth = 0;
  // Weights the node holds already. Empty: every weight (it has the model file). Else one
  // flag per layer, and the ends below: a node without the model file fetches what it
  // lacks over its link before its stage can run (see cost_model.h).
  std::vector<bool> layers_held;
  bool embedding_held = true;
  bool head_held = true;
};

enum class Objective {
  kLatency,     // minimise predicted seconds per generated token of one session
  kThroughput,  // maximise pipelined tokens/s over many sessions (slowest stage)
};

struct Requirements {
  // KV cache reserved on every stage for context_length positions of each of
  // `sessions` concurrent sessions.
  int64_t context_length = 2048;
  int64_t sessions = 1;
  // Memory left free on every used node: headroom_bytes + headroom_fraction of
  // the node's memory (for the OS, activations, gRPC buffers).
  uint64_t headroom_bytes = 0;
  double headroom_fraction = 0;
  Objective objective = Objective::kLatency;
  // A stage whose node must first fetch weights pays, per token, its transfer time spread
  // over this many tokens: the planner then prefers nodes that hold the layers unless
  // another is faster by more than that.
  double transfer_horizon_tokens = 1000;
};

}  // namespace tandem::partition
