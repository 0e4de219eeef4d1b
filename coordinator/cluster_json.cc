#include "coordinator/cluster_json.h"

namespace tandem {
namespace {

// Measured figures are 0 until measured: null tells the reader there is nothing yet.
nlohmann::json Measured(double value) {
  return value > 0 ? nlohmann::json(value) : nlohmann::json(nullptr);
}

nlohmann::json NodeJson(const v1::NodeInfo& n) {
  nlohmann::json out = {{"node_id", n.node_id()},
                        {"address", n.address()},
                        {"state", n.state().empty() ? "serving" : n.state()},
                        {"rtt_ms", n.rtt_ms()},
                        {"memory_bytes", n.profile().memory_bytes()},
                        // While the node loads a shard: layers checked and prepared of
                        // layers_to_load.
                        {"layers_loaded", n.layers_loaded()},
                        {"layers_to_load", n.layers_to_load()}};
  // A node without the model file: its weight transfer (current or last) and the rate
  // its fetches measured (null until measured).
  if (n.has_fetch()) {
    out["fetch"] = {{"active", n.fetch().active()},
                    {"bytes_done", n.fetch().bytes_done()},
                    {"bytes_total", n.fetch().bytes_total()},
                    {"bytes_per_s", Measured(n.fetch().bytes_per_s())}};
  }
  return out;
}

}  // namespace

nlohmann::json ClusterJson(const v1::StatusResponse& s) {
  nlohmann::json out = {
      {"ready", s.ready()},
      {"reason", s.reason()},
      {"model", s.model()},
      {"n_layers", s.n_layers()},
      {"plan_epoch", s.plan_epoch()},
      {"planner", s.planner()},
      {"n_ctx", s.n_ctx()},
      {"sessions", s.sessions()},
      {"predicted",
       {{"tokens_per_s", s.predicted_tokens_per_s()},
        {"ms_per_token", s.predicted_ms_per_token()}}},
  };
  const v1::MeasuredRates& m = s.measured();
  out["measured"] = {
      {"tokens_per_s", m.tokens_per_s()},       {"ms_per_token", Measured(m.ms_per_token())},
      {"ttft_ms", Measured(m.ttft_ms())},       {"sessions_active", m.sessions_active()},
      {"sessions_queued", m.sessions_queued()}, {"tokens_generated", m.tokens_generated()}};
  out["stages"] = nlohmann::json::array();
  for (int i = 0; i < s.stages_size(); ++i) {
    const v1::PlanStage& st = s.stages(i);
    const bool last = i + 1 == s.stages_size();
    out["stages"].push_back(
        {{"node_id", st.node_id()},
         {"address", st.address()},
         {"layer_first", st.layer_first()},
         {"layer_last", st.layer_last()},
         {"memory_bytes", st.memory_bytes()},
         {"node_memory_bytes", st.node_memory_bytes()},
         {"predicted_compute_ms", st.compute_ms()},
         {"compute_ms", Measured(st.measured_compute_ms())},
         {"queue_ms", Measured(st.queue_ms())},
         // The last stage has no next hop.
         {"hop_ms", last ? nullptr : Measured(st.hop_ms())},
         {"hop_bytes_per_token", last ? nullptr : Measured(st.hop_bytes_per_token())}});
  }
  out["nodes"] = nlohmann::json::array();
  for (const v1::NodeInfo& n : s.nodes()) out["nodes"].push_back(NodeJson(n));
  for (const v1::NodeInfo& n : s.dead_nodes()) out["nodes"].push_back(NodeJson(n));
  out["events"] = nlohmann::json::array();
  for (const v1::ClusterEvent& e : s.events()) {
    out["events"].push_back(
        {{"time_ms", e.time_ms()}, {"kind", e.kind()}, {"message", e.message()}});
  }
  return out;
}

nlohmann::json ClusterShape(nlohmann::json cluster) {
  cluster.erase("measured");
  for (nlohmann::json& st : cluster["stages"]) {
    for (const char* key : {"compute_ms", "queue_ms", "hop_ms", "hop_bytes_per_token"}) {
      st.erase(key);
    }
  }
  for (nlohmann::json& n : cluster["nodes"]) {
    n.erase("rtt_ms");
    if (n.contains("fetch")) {
      n["fetch"].erase("bytes_done");
      n["fetch"].erase("bytes_per_s");
    }
  }
  return cluster;
}

}  // namespace tandem
