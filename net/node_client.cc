// The gRPC NodeLink: Node.Configure, Node.Ping and Forward streams.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "absl/strings/str_cat.h"
#include "net/convert.h"
#include "net/forward_client.h"
#include "net/node_link.h"
#include "tandem.grpc.pb.h"

namespace tandem {
namespace {

// Loading a shard maps and checks its weights: minutes for a large model on a slow disk.
constexpr auto kConfigureDeadline = std::chrono::minutes(10);
constexpr auto kPingDeadline = std::chrono::seconds(2);
constexpr int kPings = 7;
// A refused connection comes back at once; a host that does not answer is not judged here.
constexpr auto kProbeDeadline = std::chrono::milliseconds(300);

class GrpcNodeLink : public NodeLink {
 public:
  absl::StatusOr<v1::ConfigureResponse> Configure(const std::string& address,
                                                  const std::string& identity,
                                                  const v1::ConfigureRequest& request) override {
    auto stub = v1::Node::NewStub(MakeChannel(address, identity));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kConfigureDeadline);
    v1::ConfigureResponse response;
    grpc::Status s = stub->Configure(&ctx, request, &response);
    if (!s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("configuring the node at ", address, " failed: ", s.error_message()));
    }
    return response;
  }

  double MeasureRttMs(const std::string& address, const std::string& identity) override {
    auto stub = v1::Node::NewStub(MakeChannel(address, identity));
    std::vector<double> samples;
    for (int i = 0; i < kPings; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + kPingDeadline);
      v1::PingReply reply;
      const auto t0 = std::chrono::steady_clock::now();
      if (!stub->Ping(&ctx, v1::PingRequest(), &reply).ok()) continue;
      samples.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    if (samples.empty()) return 0;
    // The first call opens the connection; the median ignores it.
    std::sort(samples.begin(), samples.end());
    return samples[samples.size() / 2];
  }

  bool Refused(const std::string& address, const std::string& identity) override {
    auto stub = v1::Node::NewStub(MakeChannel(address, identity));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kProbeDeadline);
    v1::PingReply reply;
    return stub->Ping(&ctx, v1::PingRequest(), &reply).error_code() ==
           grpc::StatusCode::UNAVAILABLE;
  }

  std::shared_ptr<FrameSink> OpenFrameStream(const std::string& address,
                                             const std::string& identity) override {
    return std::make_shared<ForwardClient>(address, identity, nullptr);
  }
};

}  // namespace

std::unique_ptr<NodeLink> NewGrpcNodeLink() { return std::make_unique<GrpcNodeLink>(); }

}  // namespace tandem
