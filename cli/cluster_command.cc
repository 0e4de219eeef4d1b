// `tandem cluster`: the token and certificate lifecycle of a cluster's state directory
// (the coordinator's --state-dir). A running coordinator reads both files on every join
// and call, so changes take effect at once.
//   tandem cluster rotate-token --state-dir DIR     a new join token; the old one stops working
//   tandem cluster revoke --state-dir DIR IDENTITY  refuse a node's or client's certificate
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/model_loading.h"
#include "security/join_token.h"
#include "security/pki.h"
#include "security/revocation.h"

namespace tandem::cli {
namespace {

struct ClusterOptions {
  std::string state_dir;
  std::string identity;
};

int RotateToken(const ClusterOptions& o) {
  auto ca = security::ReadWholeFile(o.state_dir + "/ca.crt");
  if (!ca.ok()) {
    return ReportError(absl::NotFoundError(
        absl::StrCat(o.state_dir, " holds no cluster CA (start a coordinator with --state-dir)")));
  }
  auto hash = security::CertificateSha256Hex(*ca);
  if (!hash.ok()) return ReportError(hash.status());
  auto token = security::LoadOrCreateJoinToken(o.state_dir, *hash, /*rotate=*/true);
  if (!token.ok()) return ReportError(token.status());
  std::fprintf(stderr,
               "tandem cluster: new join token in %s/%s (members that already joined keep their "
               "certificates):\n",
               o.state_dir.c_str(), security::kJoinTokenFile);
  std::printf("%s\n", security::FormatJoinToken(*token).c_str());
  return 0;
}

int RevokeIdentity(const ClusterOptions& o) {
  const bool node = o.identity.rfind(security::kNodeIdentityPrefix, 0) == 0;
  const bool client = o.identity.rfind(security::kClientIdentityPrefix, 0) == 0;
  if (!node && !client) {
    return ReportError(absl::InvalidArgumentError(absl::StrCat(
        "'", o.identity, "' is not a certificate identity (node-<hex> or client-<hex>; ",
        "`tandem status --json` lists each node's)")));
  }
  if (!std::filesystem::exists(o.state_dir + "/ca.crt")) {
    return ReportError(absl::NotFoundError(absl::StrCat(o.state_dir, " holds no cluster CA")));
  }
  if (absl::Status s = security::Revoke(o.state_dir, o.identity); !s.ok()) return ReportError(s);
  std::fprintf(stderr,
               "tandem cluster: %s is revoked: the coordinator refuses its calls from now on "
               "and re-plans without it once it stops answering. Rotate the token too "
               "(`tandem cluster rotate-token`) if the machine still holds it.\n",
               o.identity.c_str());
  return 0;
}

}  // namespace

void RegisterClusterCommand(CLI::App& app, RunState& state) {
  auto o = std::make_shared<ClusterOptions>();
  CLI::App* cmd = app.add_subcommand("cluster", "Manage a cluster's join token and certificates");
  cmd->require_subcommand(1);
  CLI::App* rotate = cmd->add_subcommand(
      "rotate-token", "Make a new join token; the old one stops working at once");
  rotate->add_option("--state-dir", o->state_dir, "The coordinator's --state-dir")->required();
  rotate->callback([o, &state] { state.exit_code = RotateToken(*o); });
  CLI::App* revoke =
      cmd->add_subcommand("revoke", "Refuse a node's or client's certificate from now on");
  revoke->add_option("--state-dir", o->state_dir, "The coordinator's --state-dir")->required();
  revoke->add_option("identity", o->identity, "node-<hex> or client-<hex>")->required();
  revoke->callback([o, &state] { state.exit_code = RevokeIdentity(*o); });
}

}  // namespace tandem::cli
