// The gRPC NodeLink: Node.Configure, Node.Ping and Forward streams.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
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
// Registration waits for the round trip: all pings together take a second at most, and
// an address that does not answer the first ends the measurement.
constexpr auto kPingBudget = std::chrono::seconds(1);
constexpr int kPings = 7;
// A refused connection comes back at once; a host that does not answer is not judged here.
constexpr auto kProbeDeadline = std::chrono::milliseconds(300);

class GrpcNodeLink : public NodeLink {
 public:
  absl::StatusOr<v1::ConfigureResponse> Configure(const std::string& address,
                                                  const std::string& identity,
                                                  const v1::ConfigureRequest& request,
                                                  const std::function<bool()>& alive) override {
    auto stub = v1::Node::NewStub(MakeChannel(address, identity));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kConfigureDeadline);
    v1::ConfigureResponse response;
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    grpc::Status s;
    stub->async()->Configure(&ctx, &request, &response, [&](grpc::Status status) {
      std::lock_guard<std::mutex> lock(mutex);
      s = std::move(status);
      done = true;
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mutex);
    bool cancelled = false;
    while (!cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return done; })) {
      if (!cancelled && alive && !alive()) {
        ctx.TryCancel();  // the callback still comes; wait for it
        cancelled = true;
      }
    }
    if (cancelled) {
      return absl::UnavailableError(
          absl::StrCat("configuring the node at ", address, " was abandoned: the node is gone"));
    }
    if (!s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("configuring the node at ", address, " failed: ", s.error_message()));
    }
    return response;
  }

  double MeasureRttMs(const std::string& address, const std::string& identity) override {
    auto stub = v1::Node::NewStub(MakeChannel(address, identity));
    std::vector<double> samples;
    const auto deadline = std::chrono::system_clock::now() + kPingBudget;
    for (int i = 0; i < kPings && std::chrono::system_clock::now() < deadline; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline);
      v1::PingReply reply;
      const auto t0 = std::chrono::steady_clock::now();
      if (!stub->Ping(&ctx, v1::PingRequest(), &reply).ok()) break;
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
