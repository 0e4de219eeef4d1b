#include "partition/testing/builders.h"

#include <utility>

namespace tandem::partition::testing {

ModelProfile UniformModel(int num_layers, uint64_t layer_bytes) {
  ModelProfile model;
  for (int l = 0; l < num_layers; ++l) {
    LayerProfile layer;
    layer.weight_bytes = layer_bytes;
    layer.bytes_read_per_token = static_cast<double>(layer_bytes);
    layer.flops_per_token = 2.0 * static_cast<double>(layer_bytes);
    model.layers.push_back(layer);
  }
  model.activation_bytes_per_token = 16 * 1024;
  return model;
}

NodeProfile SimpleNode(std::string name, uint64_t memory_bytes, double bandwidth) {
  NodeProfile node;
  node.name = std::move(name);
  node.memory_bytes = memory_bytes;
  node.memory_bandwidth = bandwidth;
  node.flops_per_second = 1e15;  // never the limit
  node.link_rtt_seconds = 1e-3;
  node.link_bandwidth = 125e6;
  return node;
}

}  // namespace tandem::partition::testing
