#include "partition/testing/random_instance.h"

#include <string>

namespace tandem::partition::testing {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

int UniformInt(std::mt19937& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

double UniformReal(std::mt19937& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

}  // namespace

Instance RandomInstance(std::mt19937& rng, int max_nodes, int max_layers) {
  Instance instance;
  const int num_layers = UniformInt(rng, 1, max_layers);
  uint64_t model_bytes = 0;
  for (int l = 0; l < num_layers; ++l) {
    LayerProfile layer;
    layer.weight_bytes = UniformInt(rng, 50, 150) * kMiB;
    layer.kv_bytes_per_token = UniformInt(rng, 0, 4) * 1024;
    layer.bytes_read_per_token = static_cast<double>(layer.weight_bytes);
    layer.flops_per_token = UniformReal(rng, 0.5, 4) * static_cast<double>(layer.weight_bytes);
    instance.model.layers.push_back(layer);
    model_bytes += layer.weight_bytes;
  }
  instance.model.embedding.weight_bytes = UniformInt(rng, 0, 100) * kMiB;
  instance.model.embedding.bytes_read_per_token = UniformInt(rng, 0, 64) * 1024;
  instance.model.head.weight_bytes = UniformInt(rng, 0, 100) * kMiB;
  instance.model.head.bytes_read_per_token = static_cast<double>(instance.model.head.weight_bytes);
  instance.model.head.flops_per_token = 2.0 * instance.model.head.weight_bytes;
  instance.model.head_shares_embedding_weights = UniformInt(rng, 0, 1) == 1;
  instance.model.activation_bytes_per_token = UniformInt(rng, 1, 64) * 1024;

  instance.requirements.context_length = UniformInt(rng, 0, 512);
  instance.requirements.sessions = UniformInt(rng, 1, 4);
  instance.requirements.headroom_bytes = UniformInt(rng, 0, 20) * kMiB;
  instance.requirements.headroom_fraction = UniformInt(rng, 0, 1) * 0.05;

  const int num_nodes = UniformInt(rng, 1, max_nodes);
  for (int j = 0; j < num_nodes; ++j) {
    if (j > 0 && UniformInt(rng, 0, 5) == 0) {
      NodeProfile copy = instance.nodes[UniformInt(rng, 0, j - 1)];
      copy.name = "node" + std::to_string(j);
      instance.nodes.push_back(copy);
      continue;
    }
    NodeProfile node;
    node.name = "node" + std::to_string(j);
    // Mostly between a third and all of the model, sometimes nothing at all.
    node.memory_bytes = UniformInt(rng, 0, 7) == 0
                            ? 0
                            : static_cast<uint64_t>(UniformReal(rng, 0.3, 1.3) * model_bytes);
    node.memory_bandwidth = UniformReal(rng, 2e9, 40e9);
    node.flops_per_second = UniformReal(rng, 5e9, 400e9);
    node.link_rtt_seconds = UniformReal(rng, 0, 10e-3);
    node.link_bandwidth = UniformReal(rng, 5e6, 200e6);
    instance.nodes.push_back(node);
  }
  return instance;
}

std::vector<NodeProfile> WithNoise(const std::vector<NodeProfile>& nodes, double fraction,
                                   std::mt19937& rng) {
  auto factor = [&] { return UniformReal(rng, 1 - fraction, 1 + fraction); };
  std::vector<NodeProfile> noisy = nodes;
  for (NodeProfile& node : noisy) {
    node.memory_bytes = static_cast<uint64_t>(static_cast<double>(node.memory_bytes) * factor());
    node.memory_bandwidth *= factor();
    node.flops_per_second *= factor();
    node.link_rtt_seconds *= factor();
    node.link_bandwidth *= factor();
  }
  return noisy;
}

}  // namespace tandem::partition::testing
