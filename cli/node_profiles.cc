#include "cli/node_profiles.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace tandem::cli {
namespace {

using Json = nlohmann::json;

struct Field {
  const char* key;
  bool allow_zero;  // otherwise it must be > 0
};

// A finite number >= 0 (or > 0) from `node[key]`.
absl::StatusOr<double> NumberField(const Json& node, const Field& field, const std::string& where) {
  const auto it = node.find(field.key);
  if (it == node.end()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: field \"%s\" is missing", where, field.key));
  }
  if (!it->is_number()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: field \"%s\" must be a number, got %s", where, field.key, it->dump()));
  }
  const double value = it->get<double>();
  if (!std::isfinite(value) || value < 0 || (!field.allow_zero && value == 0)) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: field \"%s\" must be %s, got %g", where,
                                                      field.key, field.allow_zero ? ">= 0" : "> 0",
                                                      value));
  }
  return value;
}

}  // namespace

absl::StatusOr<std::vector<partition::NodeProfile>> ParseNodeProfiles(std::string_view json_text,
                                                                      std::string_view source) {
  Json root;
  try {
    root = Json::parse(json_text);
  } catch (const Json::exception& e) {
    // Syntax errors, and numbers out of range (1e400): e.what() says which, and where.
    return absl::InvalidArgumentError(absl::StrFormat("%s: not valid JSON: %s", source, e.what()));
  }
  if (!root.is_object() || !root.contains("nodes") || !root["nodes"].is_array()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: expected an object with a \"nodes\" array", source));
  }
  std::vector<partition::NodeProfile> nodes;
  const Json& list = root["nodes"];
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& entry = list[i];
    std::string where = absl::StrFormat("%s: nodes[%d]", source, i);
    if (!entry.is_object()) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: expected an object", where));
    }
    const auto name = entry.find("name");
    if (name == entry.end() || !name->is_string() || name->get<std::string>().empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: field \"name\" must be a non-empty string", where));
    }
    partition::NodeProfile node;
    node.name = name->get<std::string>();
    where += absl::StrFormat(" (\"%s\")", node.name);

    absl::StatusOr<double> memory_gib = NumberField(entry, {"memory_gib", true}, where);
    absl::StatusOr<double> bandwidth_gbs = NumberField(entry, {"bandwidth_gbs", false}, where);
    absl::StatusOr<double> gflops = NumberField(entry, {"gflops", false}, where);
    absl::StatusOr<double> rtt_ms = NumberField(entry, {"rtt_ms", true}, where);
    absl::StatusOr<double> link_gbps = NumberField(entry, {"link_gbps", false}, where);
    for (const absl::StatusOr<double>* value :
         {&memory_gib, &bandwidth_gbs, &gflops, &rtt_ms, &link_gbps}) {
      if (!value->ok()) return value->status();
    }
    // 2^30 GiB is far beyond any machine and keeps the byte count exact.
    if (*memory_gib > 1 << 30) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: memory_gib %g is implausibly large", where, *memory_gib));
    }
    node.memory_bytes = static_cast<uint64_t>(*memory_gib * 1073741824.0);
    node.memory_bandwidth = *bandwidth_gbs * 1e9;
    node.flops_per_second = *gflops * 1e9;
    node.link_rtt_seconds = *rtt_ms * 1e-3;
    node.link_bandwidth = *link_gbps * 1e9 / 8;
    nodes.push_back(std::move(node));
  }
  return nodes;
}

absl::StatusOr<std::vector<partition::NodeProfile>> ReadNodeProfiles(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrFormat("%s: cannot open", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrFormat("%s: read failed", path));
  return ParseNodeProfiles(text.str(), path);
}

}  // namespace tandem::cli
