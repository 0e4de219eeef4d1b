// `tandem status`: a running cluster at a glance, from the coordinator's Status RPC: the
// plan's stages with their health and measured rates, nodes outside the plan, recent
// events. --json prints the object GET /v1/cluster serves; --watch redraws every second.
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "cli/model_loading.h"
#include "cli/signals.h"
#include "cli/token_options.h"
#include "coordinator/cluster_json.h"
#include "net/client.h"

namespace tandem::cli {
namespace {

struct StatusOptions {
  std::string coordinator;
  TokenOptions token;
  bool json = false;
  bool watch = false;
};

constexpr size_t kEventsShown = 8;

std::string Figure(const nlohmann::json& v, const char* format = "%.2f") {
  return v.is_number() ? absl::StrFormat(format, v.get<double>()) : "-";
}

std::string Mib(const nlohmann::json& v) {
  return v.is_number() ? absl::StrFormat("%.1f", v.get<double>() / 1048576.0) : "-";
}

// "serving", or "joining 3/8" while the node loads its layers.
std::string State(const nlohmann::json& node) {
  std::string state = node.value("state", std::string("dead"));
  const int64_t total = node.value("layers_to_load", int64_t{0});
  if (total > 0) {
    absl::StrAppend(&state, " ", node.value("layers_loaded", int64_t{0}), "/", total);
  }
  return state;
}

// A node's weight transfer: "12.0/100.0" MiB while it fetches, "done" after, "-" for a
// node with the model file.
std::string Fetch(const nlohmann::json& node) {
  if (!node.contains("fetch") || !node["fetch"].is_object()) return "-";
  const auto& f = node["fetch"];
  if (!f.value("active", false)) return "done";
  return Mib(f["bytes_done"]) + "/" + Mib(f["bytes_total"]);
}

std::string Clock(int64_t time_ms) {
  const std::time_t t = static_cast<std::time_t>(time_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

// The table, from the same JSON --json prints, so both say the same things.
std::string StatusTable(const std::string& address, const nlohmann::json& c) {
  std::string out = absl::StrFormat(
      "cluster %s: %s\n", address,
      c["ready"].get<bool>() ? "ready" : "not ready (" + c["reason"].get<std::string>() + ")");
  absl::StrAppendFormat(&out,
                        "model %s, %d layers, plan epoch %d (%s planner), context %d, KV for %d "
                        "sessions\n",
                        c["model"].get<std::string>(), c["n_layers"].get<int>(),
                        c["plan_epoch"].get<int64_t>(), c["planner"].get<std::string>(),
                        c["n_ctx"].get<int64_t>(), c["sessions"].get<int64_t>());
  const auto& m = c["measured"];
  const auto& p = c["predicted"];
  absl::StrAppendFormat(
      &out,
      "tokens/s %s (planner %s)   ms/token %s (planner %s)   first token %s ms   sessions %d "
      "active, %d queued   %d tokens generated\n\n",
      Figure(m["tokens_per_s"], "%.1f"), Figure(p["tokens_per_s"], "%.1f"),
      Figure(m["ms_per_token"], "%.1f"), Figure(p["ms_per_token"], "%.1f"),
      Figure(m["ttft_ms"], "%.0f"), m["sessions_active"].get<int64_t>(),
      m["sessions_queued"].get<int64_t>(), m["tokens_generated"].get<uint64_t>());

  std::map<std::string, nlohmann::json> nodes;
  for (const auto& n : c["nodes"]) nodes[n["node_id"].get<std::string>()] = n;
  absl::StrAppendFormat(&out, "%-3s %-10s %-21s %-8s %-10s %-15s %-16s %-9s %-8s %-10s %-7s %s\n",
                        "#", "node", "address", "state", "layers", "memory MiB",
                        "compute ms (plan)", "queue ms", "hop ms", "hop B/tok", "rtt ms",
                        "fetch MiB");
  int index = 0;
  for (const auto& s : c["stages"]) {
    const std::string id = s["node_id"].get<std::string>();
    const auto it = nodes.find(id);
    const nlohmann::json node = it == nodes.end() ? nlohmann::json::object() : it->second;
    absl::StrAppendFormat(
        &out, "%-3d %-10s %-21s %-8s %-10s %-15s %-16s %-9s %-8s %-10s %-7s %s\n", ++index, id,
        s["address"].get<std::string>(), State(node),
        absl::StrFormat("[%d, %d)", s["layer_first"].get<int>(), s["layer_last"].get<int>()),
        Mib(s["memory_bytes"]) + " / " + Mib(s["node_memory_bytes"]),
        Figure(s["compute_ms"]) + " (" + Figure(s["predicted_compute_ms"]) + ")",
        Figure(s["queue_ms"]), Figure(s["hop_ms"]), Figure(s["hop_bytes_per_token"], "%.0f"),
        node.contains("rtt_ms") ? Figure(node["rtt_ms"]) : "-", Fetch(node));
    if (it != nodes.end()) nodes.erase(it);
  }
  if (!nodes.empty()) {
    out += "\nnot in the plan:\n";
    for (const auto& [id, n] : nodes) {
      absl::StrAppendFormat(&out, "    %-10s %-21s %-8s offers %s MiB, fetch %s\n", id,
                            n["address"].get<std::string>(), State(n), Mib(n["memory_bytes"]),
                            Fetch(n));
    }
  }
  const auto& events = c["events"];
  if (!events.empty()) {
    out += "\nrecent events:\n";
    const size_t first = events.size() > kEventsShown ? events.size() - kEventsShown : 0;
    for (size_t i = first; i < events.size(); ++i) {
      const auto& e = events[i];
      absl::StrAppendFormat(&out, "  %s  %-10s %s\n", Clock(e["time_ms"].get<int64_t>()),
                            e["kind"].get<std::string>(), e["message"].get<std::string>());
    }
  }
  return out;
}

int RunStatus(const StatusOptions& o) {
  if (o.watch) BlockTerminationSignals();
  if (absl::Status s = JoinAsClient(o.coordinator, o.token); !s.ok()) return ReportError(s);
  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  for (;;) {
    absl::StatusOr<v1::StatusResponse> status = RemoteStatus(o.coordinator);
    std::string text;
    if (!status.ok()) {
      if (!o.watch) {
        absl::Status explained = ExplainClusterError(o.coordinator, o.token, status.status());
        if (explained != status.status()) return ReportError(explained);
        return ReportError(absl::UnavailableError(absl::StrCat(
            "cannot reach the coordinator at ", o.coordinator, ": ", status.status().message())));
      }
      absl::Status explained = ExplainClusterError(o.coordinator, o.token, status.status());
      text = explained != status.status()
                 ? absl::StrCat(explained.message(), "\n")
                 : absl::StrCat("cannot reach the coordinator at ", o.coordinator, ": ",
                                status.status().message(), "\n");
    } else {
      const nlohmann::json c = ClusterJson(*status);
      text = o.json ? c.dump() + "\n" : StatusTable(o.coordinator, c);
    }
    // A terminal is redrawn in place; a pipe gets one report after another.
    if (o.watch && terminal && !o.json) std::fputs("\033[H\033[2J", stdout);
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
    if (!o.watch || WaitForTerminationFor(1000)) return 0;
    if (!terminal && !o.json) std::fputs("\n", stdout);
  }
}

}  // namespace

void RegisterStatusCommand(CLI::App& app, RunState& state) {
  auto o = std::make_shared<StatusOptions>();
  CLI::App* cmd = app.add_subcommand(
      "status", "A running cluster: nodes, layers, health, measured rates and recent events");
  cmd->add_option("--coordinator", o->coordinator, "Coordinator address HOST:PORT")->required();
  AddTokenOptions(cmd, &o->token);
  cmd->add_flag("--json", o->json, "Print the cluster as JSON (what GET /v1/cluster serves)");
  cmd->add_flag("--watch", o->watch, "Refresh every second until Ctrl-C");
  cmd->callback([o, &state] { state.exit_code = RunStatus(*o); });
}

}  // namespace tandem::cli
