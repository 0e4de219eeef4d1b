// The coordinator in one process, its nodes faked behind the NodeLink: joins, leaves,
// failover replay, re-plans and epoch fencing, driven tick by tick on a fake clock.
#include "coordinator/coordinator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>

#include "coordinator/cluster_json.h"
#include "model/fingerprint.h"
#include "net/frames.h"

namespace tandem {
namespace {

using Clock = std::chrono::steady_clock;

const std::string kModel = std::string(TANDEM_SHARED_DIR) + "/models/stories260K-f32.gguf";

// Every node behind one fake link. The "pipeline" answers each sampling frame with a token
// that depends only on the position it takes, so a replayed session must produce exactly
// the tokens of an undisturbed one.
class FakeNodes : public NodeLink {
 public:
  struct Sent {
    std::string address;
    v1::ActivationFrame frame;
  };
  class Sink : public FrameSink {
   public:
    Sink(FakeNodes* nodes, std::string address) : nodes_(nodes), address_(std::move(address)) {}
    absl::Status Send(const v1::ActivationFrame& frame) override {
      std::lock_guard<std::mutex> lock(nodes_->mutex_);
      if (nodes_->down_.count(address_)) return absl::UnavailableError("down");
      nodes_->sent_.push_back({address_, frame});
      return absl::OkStatus();
    }

   private:
    FakeNodes* nodes_;
    std::string address_;
  };

  absl::StatusOr<v1::ConfigureResponse> Configure(const std::string& address, const std::string&,
                                                  const v1::ConfigureRequest& request,
                                                  const std::function<bool()>&) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (down_.count(address)) return absl::UnavailableError(address + " is down");
    configured_[address] = request;
    configure_order_.push_back(address);
    v1::ConfigureResponse r;
    if (auto it = answers_.find(address); it != answers_.end()) r = it->second;
    r.set_ok(true);
    return r;
  }
  double MeasureRttMs(const std::string&, const std::string&) override { return 0.1; }
  bool Refused(const std::string& address, const std::string&) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++probes_;
    return down_.count(address) > 0;
  }
  int probes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return probes_;
  }
  std::shared_ptr<FrameSink> OpenFrameStream(const std::string& address,
                                             const std::string&) override {
    return std::make_shared<Sink>(this, address);
  }

  static int32_t TokenFor(int64_t position) {
    return static_cast<int32_t>(3 + position * 37 % 400);
  }

  // Answers every frame sent so far as a healthy pipeline would; returns how many tokens.
  int Answer(Coordinator& c) {
    c.Flush();
    std::vector<Sent> sent;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      sent.swap(sent_);
      all_.insert(all_.end(), sent.begin(), sent.end());
    }
    int tokens = 0;
    for (const Sent& s : sent) {
      const auto& f = s.frame;
      if (f.end_session() || !f.sample()) continue;
      v1::StepResult r;
      r.set_session_id(f.session_id());
      r.set_plan_epoch(f.plan_epoch());
      r.set_position(f.position() + f.n_tokens());
      r.set_token(TokenFor(r.position()));
      EXPECT_TRUE(c.OnResult(r).ok());
      ++tokens;
    }
    return tokens;
  }
  // Answers until the pipeline goes quiet.
  void AnswerAll(Coordinator& c) {
    while (Answer(c) > 0) {
    }
  }
  void SetDown(const std::string& address) {
    std::lock_guard<std::mutex> lock(mutex_);
    down_.insert({address, true});
  }
  std::map<std::string, v1::ConfigureRequest> configured() {
    std::lock_guard<std::mutex> lock(mutex_);
    return configured_;
  }
  std::vector<std::string> configure_order() {
    std::lock_guard<std::mutex> lock(mutex_);
    return configure_order_;
  }
  // What the node at `address` answers to every Configure from now on (ok is set).
  void Answer(const std::string& address, const v1::ConfigureResponse& r) {
    std::lock_guard<std::mutex> lock(mutex_);
    answers_[address] = r;
  }
  std::vector<Sent> all_sent() {
    std::lock_guard<std::mutex> lock(mutex_);
    return all_;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, bool> down_;
  int probes_ = 0;
  std::map<std::string, v1::ConfigureRequest> configured_;
  std::vector<std::string> configure_order_;
  std::map<std::string, v1::ConfigureResponse> answers_;
  std::vector<Sent> sent_, all_;
};

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto file = GgufFile::Open(kModel);
    ASSERT_TRUE(file.ok()) << file.status() << " (the shared test data is required)";
    fingerprint_ = ModelFingerprint(**file);
  }

  void Start(PlanPolicy policy, int min_nodes,
             const std::function<void(CoordinatorOptions&)>& tweak = nullptr) {
    CoordinatorOptions o;
    o.model_path = kModel;
    o.min_nodes = min_nodes;
    o.planning.policy = policy;
    o.planning.requirements.sessions = 2;
    o.n_ctx = 128;
    o.background_planner = false;
    o.now = [this] { return now_; };
    if (tweak) tweak(o);
    auto nodes = std::make_unique<FakeNodes>();
    nodes_ = nodes.get();
    auto c = Coordinator::Create(o, std::move(nodes));
    ASSERT_TRUE(c.ok()) << c.status();
    c_ = std::move(*c);
  }

  std::string Join(const std::string& address, double bandwidth_gbs = 10,
                   const std::string& boot_id = "boot-1", const std::string& identity = "") {
    v1::RegisterRequest r;
    r.set_protocol_version(kProtocolVersion);
    r.set_address(address);
    r.set_boot_id(boot_id);
    r.set_model_fingerprint(fingerprint_);
    r.mutable_profile()->set_memory_bytes(1ull << 30);
    r.mutable_profile()->set_bandwidth_gbs(bandwidth_gbs);
    r.mutable_profile()->set_gflops(50);
    r.mutable_profile()->set_threads(1);
    v1::RegisterResponse resp = c_->Register(r, identity);
    EXPECT_TRUE(resp.accepted()) << resp.reason();
    return resp.node_id();
  }
  // A heartbeat from a healthy node serving the plan in force.
  v1::HeartbeatResponse Beat(const std::string& id, const std::string& boot_id = "boot-1") {
    v1::HeartbeatRequest hb;
    hb.set_node_id(id);
    hb.set_boot_id(boot_id);
    hb.set_plan_epoch(c_->Status().plan_epoch());
    hb.set_serving(true);
    v1::HeartbeatResponse r = c_->Heartbeat(hb);
    EXPECT_TRUE(r.known()) << id;
    return r;
  }

  struct Collected {
    std::mutex mutex;
    std::vector<int32_t> tokens;
    bool done = false;
    absl::Status error;
  };
  std::shared_ptr<Collected> Generate(int n, std::shared_ptr<Session>* session = nullptr) {
    auto out = std::make_shared<Collected>();
    v1::GenerateRequest r;
    r.set_prompt("Once upon a time");
    r.set_n_predict(n);
    r.mutable_sampling()->set_temperature(0);
    r.mutable_sampling()->set_top_p(1);
    r.mutable_sampling()->set_repeat_penalty(1);
    auto s = c_->StartSession(r, [out](const SessionEvent& e) {
      std::lock_guard<std::mutex> lock(out->mutex);
      if (e.has_token) out->tokens.push_back(e.token);
      if (e.done) out->done = true;
      if (!e.error.ok()) out->error = e.error;
    });
    EXPECT_TRUE(s.ok()) << s.status();
    if (session && s.ok()) *session = *s;
    return out;
  }
  // Tokens an undisturbed session gets after the 5-token prompt (BOS included).
  static std::vector<int32_t> Expected(int n) {
    std::vector<int32_t> t;
    for (int i = 0; i < n; ++i) t.push_back(FakeNodes::TokenFor(5 + i));
    return t;
  }

  Clock::time_point now_ = Clock::now();
  std::string fingerprint_;
  FakeNodes* nodes_ = nullptr;
  std::unique_ptr<Coordinator> c_;
};

// A refusal says the models differ and nothing more: the coordinator's fingerprint and
// model path would let a stranger pass the check on its next try.
TEST_F(CoordinatorTest, ModelMismatchIsRefusedWithoutTheCoordinatorsValues) {
  Start(PlanPolicy::kEven, 1);
  v1::RegisterRequest r;
  r.set_protocol_version(kProtocolVersion);
  r.set_address("10.0.0.9:1");
  r.set_model_fingerprint(std::string(64, '0'));
  r.set_model_path("/elsewhere/other.gguf");
  v1::RegisterResponse resp = c_->Register(r);
  EXPECT_FALSE(resp.accepted());
  EXPECT_THAT(resp.reason(), ::testing::HasSubstr("model mismatch"));
  EXPECT_THAT(resp.reason(), ::testing::Not(::testing::HasSubstr(fingerprint_)));
  EXPECT_THAT(resp.reason(), ::testing::Not(::testing::HasSubstr(kModel)));
  EXPECT_THAT(resp.reason(), ::testing::Not(::testing::HasSubstr("stories260K")));
  EXPECT_EQ(fingerprint_.size(), 64u);
}

TEST_F(CoordinatorTest, JoiningNodesGetAPlanConfiguredLastStageFirst) {
  Start(PlanPolicy::kEven, 2);
  Join("10.0.0.1:1");
  c_->Tick();
  EXPECT_FALSE(c_->Status().ready());
  EXPECT_THAT(c_->Status().reason(), ::testing::HasSubstr("waiting for nodes: 1 of 2"));
  Join("10.0.0.2:1");
  c_->Tick();
  v1::StatusResponse s = c_->Status();
  ASSERT_TRUE(s.ready()) << s.reason();
  EXPECT_EQ(s.plan_epoch(), 1u);
  ASSERT_EQ(s.stages_size(), 2);
  EXPECT_EQ(s.stages(0).layer_first(), 0);
  EXPECT_EQ(s.stages(1).layer_last(), 5);
  EXPECT_EQ(nodes_->configure_order(),
            (std::vector<std::string>{s.stages(1).address(), s.stages(0).address()}));
  auto configured = nodes_->configured();
  EXPECT_EQ(configured[s.stages(0).address()].next_hop(), s.stages(1).address());
  EXPECT_EQ(configured[s.stages(1).address()].next_hop(), "");
  EXPECT_EQ(configured[s.stages(0).address()].plan_epoch(), 1u);
}

TEST_F(CoordinatorTest, SessionRunsToTheEndAndFreesItsState) {
  Start(PlanPolicy::kEven, 2);
  Join("10.0.0.1:1");
  Join("10.0.0.2:1");
  c_->Tick();
  auto out = Generate(6);
  nodes_->AnswerAll(*c_);
  EXPECT_TRUE(out->done);
  EXPECT_EQ(out->tokens, Expected(6));
  const auto sent = nodes_->all_sent();
  ASSERT_FALSE(sent.empty());
  EXPECT_TRUE(sent.back().frame.end_session());
  // Positions reach the first stage contiguously: the prompt, then one token a step.
  int64_t next = 0;
  for (const auto& s : sent) {
    if (s.frame.end_session()) continue;
    EXPECT_EQ(s.frame.position(), next);
    next += s.frame.n_tokens();
  }
}

TEST_F(CoordinatorTest, WaitingRequestStartsOnTheFirstPlan) {
  Start(PlanPolicy::kEven, 1);
  auto out = Generate(4);
  c_->Tick();
  EXPECT_FALSE(out->done);
  Join("10.0.0.1:1");
  c_->Tick();
  nodes_->AnswerAll(*c_);
  EXPECT_TRUE(out->done);
  EXPECT_EQ(out->tokens, Expected(4));
}

TEST_F(CoordinatorTest, WaitingRequestFailsClearlyWhenNoClusterForms) {
  Start(PlanPolicy::kEven, 2);
  auto out = Generate(4);
  now_ += std::chrono::seconds(31);
  c_->Tick();
  EXPECT_EQ(out->error.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(out->error.message()), ::testing::HasSubstr("not ready"));
}

TEST_F(CoordinatorTest, NodeLossReplaysSessionsOnTheSurvivorsWithIdenticalTokens) {
  Start(PlanPolicy::kEven, 2);
  const std::string a = Join("10.0.0.1:1");
  const std::string b = Join("10.0.0.2:1");
  c_->Tick();
  auto out = Generate(12);
  for (int i = 0; i < 4; ++i) nodes_->Answer(*c_);  // 4 tokens, then b goes silent
  ASSERT_EQ(out->tokens.size(), 4u);
  // Results still in flight from the old plan (epoch 1) must not count after the re-plan.
  c_->Flush();
  std::vector<FakeNodes::Sent> stale = nodes_->all_sent();
  now_ += std::chrono::seconds(2);
  Beat(a);
  now_ += std::chrono::seconds(2);
  Beat(a);
  c_->Tick();  // b has been silent for 4 s > 3 s
  v1::StatusResponse s = c_->Status();
  ASSERT_TRUE(s.ready()) << s.reason();
  EXPECT_EQ(s.plan_epoch(), 2u);
  ASSERT_EQ(s.stages_size(), 1);
  EXPECT_EQ(s.stages(0).node_id(), a);
  // A stale result for the next position, from epoch 1: fenced off.
  v1::StepResult late;
  late.set_plan_epoch(1);
  late.set_position(9);
  late.set_token(7);
  for (const auto& f : stale) late.set_session_id(f.frame.session_id());
  EXPECT_TRUE(c_->OnResult(late).ok());  // ignored, not refused
  nodes_->AnswerAll(*c_);
  EXPECT_TRUE(out->done);
  EXPECT_EQ(out->tokens, Expected(12));
  EXPECT_TRUE(out->error.ok()) << out->error;
}

TEST_F(CoordinatorTest, ADeathShowsAsAnEventAndADeadNodeWithTheRecovery) {
  Start(PlanPolicy::kEven, 2);
  const std::string a = Join("10.0.0.1:1");
  const std::string b = Join("10.0.0.2:1");
  c_->Tick();
  auto out = Generate(8);
  for (int i = 0; i < 3; ++i) nodes_->Answer(*c_);
  now_ += std::chrono::seconds(2);
  Beat(a);
  now_ += std::chrono::seconds(2);
  Beat(a);
  c_->Tick();  // b died: re-plan on a, the session replayed
  nodes_->AnswerAll(*c_);
  ASSERT_TRUE(out->done);

  const nlohmann::json j = ClusterJson(c_->Status());
  std::map<std::string, std::string> states;
  for (const auto& n : j["nodes"]) states[n["node_id"]] = n["state"];
  EXPECT_EQ(states[b], "dead");
  EXPECT_NE(states[a], "dead");
  std::vector<std::string> kinds;
  for (const auto& e : j["events"]) kinds.push_back(e["kind"]);
  EXPECT_THAT(kinds, ::testing::ElementsAre("joined", "joined", "planned", "died", "replanned",
                                            "recovered"));
  EXPECT_EQ(j["measured"]["tokens_generated"], 8);
  EXPECT_EQ(j["plan_epoch"], 2);

  const std::string metrics = c_->metrics_text();
  EXPECT_THAT(metrics, ::testing::HasSubstr("tandem_nodes{state=\"dead\"} 1"));
  EXPECT_THAT(metrics, ::testing::HasSubstr("tandem_replans_total 1"));
  EXPECT_THAT(metrics, ::testing::HasSubstr("tandem_recoveries_total 1"));
  EXPECT_THAT(metrics, ::testing::HasSubstr("tandem_tokens_generated_total 8"));
}

// A killed node's port refuses connections: once it misses a heartbeat or two, it is dead
// at once, not at the 3 s timeout (the dashboard shows a death within 2 s). A node that is
// only late answers the probe and stays.
TEST_F(CoordinatorTest, ASilentNodeThatRefusesConnectionsIsDeadBeforeTheTimeout) {
  Start(PlanPolicy::kEven, 2);
  const std::string a = Join("10.0.0.1:1");
  const std::string b = Join("10.0.0.2:1");
  c_->Tick();
  now_ += std::chrono::milliseconds(700);
  Beat(a);
  c_->Tick();  // 700 ms of silence: not yet asked
  EXPECT_EQ(nodes_->probes(), 0);
  now_ += std::chrono::milliseconds(300);
  Beat(a);
  c_->Tick();  // 1 s of silence, but b answers: alive
  EXPECT_EQ(nodes_->probes(), 1);
  EXPECT_EQ(c_->Status().dead_nodes_size(), 0);
  c_->Tick();  // probed again only after a heartbeat interval
  EXPECT_EQ(nodes_->probes(), 1);
  nodes_->SetDown("10.0.0.2:1");
  now_ += std::chrono::milliseconds(500);
  Beat(a);
  c_->Tick();  // 1.5 s of silence and refused: dead, well before the 3 s timeout
  v1::StatusResponse s = c_->Status();
  ASSERT_EQ(s.dead_nodes_size(), 1);
  EXPECT_EQ(s.dead_nodes(0).node_id(), b);
  ASSERT_TRUE(s.ready()) << s.reason();
  ASSERT_EQ(s.stages_size(), 1);
  EXPECT_EQ(s.stages(0).node_id(), a);
}

// `tandem cluster revoke` takes a node out of the cluster at the next tick, not at its
// heartbeat timeout (3 s): no frame of the new plan goes to it, its sessions replay on the
// others with the same tokens, and the event says why.
TEST_F(CoordinatorTest, ARevokedNodeLeavesAtTheNextTickAndItsSessionsReplay) {
  auto revoked = std::make_shared<std::set<std::string>>();
  Start(PlanPolicy::kEven, 2, [revoked](CoordinatorOptions& o) {
    o.is_revoked = [revoked](const std::string& identity) { return revoked->count(identity) > 0; };
  });
  const std::string a = Join("10.0.0.1:1", 10, "boot-1", "node-aaaa");
  const std::string b = Join("10.0.0.2:1", 10, "boot-1", "node-bbbb");
  c_->Tick();
  ASSERT_EQ(c_->Status().stages_size(), 2);
  ASSERT_EQ(c_->Status().stages(0).node_id(), a);  // the coordinator sends frames to a
  auto out = Generate(12);
  for (int i = 0; i < 4; ++i) nodes_->Answer(*c_);
  ASSERT_EQ(out->tokens.size(), 4u);
  c_->Tick();  // nothing revoked yet: the plan stands
  EXPECT_EQ(c_->Status().plan_epoch(), 1u);

  revoked->insert("node-aaaa");
  c_->Tick();  // no time passed: a's last heartbeat is fresh, and it is out all the same
  v1::StatusResponse s = c_->Status();
  ASSERT_TRUE(s.ready()) << s.reason();
  EXPECT_EQ(s.plan_epoch(), 2u);
  ASSERT_EQ(s.stages_size(), 1);
  EXPECT_EQ(s.stages(0).node_id(), b);
  ASSERT_EQ(s.dead_nodes_size(), 1);
  EXPECT_EQ(s.dead_nodes(0).node_id(), a);

  nodes_->AnswerAll(*c_);
  EXPECT_TRUE(out->done);
  EXPECT_EQ(out->tokens, Expected(12));
  EXPECT_TRUE(out->error.ok()) << out->error;
  int replayed = 0;
  for (const FakeNodes::Sent& f : nodes_->all_sent()) {
    if (f.frame.plan_epoch() < 2) continue;
    ++replayed;
    EXPECT_EQ(f.address, "10.0.0.2:1") << "a frame of the new plan went to the revoked node";
  }
  EXPECT_GT(replayed, 0);
  const nlohmann::json j = ClusterJson(c_->Status());
  bool told = false;
  for (const auto& e : j["events"]) {
    told = told || (e["kind"] == "died" &&
                    e["message"] == a + " (node-aaaa) is revoked: it leaves the cluster");
  }
  EXPECT_TRUE(told) << j["events"].dump();
}

TEST_F(CoordinatorTest, AFasterNodeJoiningIsUsedByTheNextPlan) {
  Start(PlanPolicy::kOptimal, 1);
  Join("10.0.0.1:1", /*bandwidth_gbs=*/0.5);
  c_->Tick();
  ASSERT_TRUE(c_->Status().ready());
  EXPECT_EQ(c_->Status().plan_epoch(), 1u);
  const std::string fast = Join("10.0.0.2:1", /*bandwidth_gbs=*/100);
  c_->Tick();
  v1::StatusResponse s = c_->Status();
  EXPECT_EQ(s.plan_epoch(), 2u);
  bool uses_fast = false;
  for (const auto& st : s.stages()) uses_fast |= st.node_id() == fast;
  EXPECT_TRUE(uses_fast);
}

TEST_F(CoordinatorTest, DuplicateAndOutOfVocabularyResultsAreHandled) {
  Start(PlanPolicy::kEven, 1);
  Join("10.0.0.1:1");
  c_->Tick();
  std::shared_ptr<Session> session;
  auto out = Generate(3, &session);
  ASSERT_TRUE(session);
  nodes_->Answer(*c_);
  ASSERT_EQ(out->tokens.size(), 1u);
  v1::StepResult dup;
  dup.set_session_id(session->id());
  dup.set_plan_epoch(1);
  dup.set_position(5);  // already taken
  dup.set_token(9);
  absl::Status refused = c_->OnResult(dup);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("expects 6"));
  EXPECT_EQ(out->tokens.size(), 1u);
  v1::StepResult ahead = dup;  // a guess at a later position is refused too
  ahead.set_position(9);
  EXPECT_EQ(c_->OnResult(ahead).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out->tokens.size(), 1u);
  v1::StepResult bad = dup;
  bad.set_position(6);
  bad.set_token(100000);
  (void)c_->OnResult(bad);
  EXPECT_EQ(out->error.code(), absl::StatusCode::kDataLoss);
}

TEST_F(CoordinatorTest, AStageErrorEndsTheSessionOnEveryStage) {
  Start(PlanPolicy::kEven, 1);
  Join("10.0.0.1:1");
  c_->Tick();
  std::shared_ptr<Session> session;
  auto out = Generate(3, &session);
  nodes_->Answer(*c_);
  v1::StepResult err;
  err.set_session_id(session->id());
  err.set_plan_epoch(1);
  err.set_position(6);
  err.set_code(static_cast<int>(absl::StatusCode::kOutOfRange));
  err.set_message("positions exceed the context");
  EXPECT_TRUE(c_->OnResult(err).ok());
  EXPECT_EQ(out->error.code(), absl::StatusCode::kOutOfRange);
  c_->Flush();
  nodes_->Answer(*c_);
  const auto sent = nodes_->all_sent();
  ASSERT_FALSE(sent.empty());
  EXPECT_TRUE(sent.back().frame.end_session());
  EXPECT_EQ(sent.back().frame.session_id(), session->id());
}

TEST_F(CoordinatorTest, RequestsAreCheckedBeforeAnyWork) {
  Start(PlanPolicy::kEven, 1);
  v1::GenerateRequest r;
  r.set_prompt("Once upon a time");
  r.set_n_predict(1000);  // past the context of 128
  r.mutable_sampling()->set_top_p(1);
  r.mutable_sampling()->set_repeat_penalty(1);
  auto s = c_->StartSession(r, nullptr);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kOutOfRange);
  r.set_n_predict(4);
  r.mutable_sampling()->set_top_p(3);
  EXPECT_EQ(c_->StartSession(r, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c_->metrics_text(),
              ::testing::HasSubstr("tandem_refused_requests_total{reason=\"invalid_request\"} 2"));
}

TEST_F(CoordinatorTest, SessionsBeyondThePlansReservationAreRefused) {
  Start(PlanPolicy::kEven, 1);  // the plan reserves 2 sessions
  Join("10.0.0.1:1");
  c_->Tick();
  std::shared_ptr<Session> a, b;
  auto out_a = Generate(3, &a);
  auto out_b = Generate(3, &b);
  ASSERT_TRUE(a && b);
  // Ids are random 64-bit values, not a sequence.
  EXPECT_NE(a->id(), b->id());
  EXPECT_GT(a->id() > b->id() ? a->id() - b->id() : b->id() - a->id(), 1u << 20);
  v1::GenerateRequest r;
  r.set_prompt("Once upon a time");
  r.set_n_predict(3);
  r.mutable_sampling()->set_top_p(1);
  r.mutable_sampling()->set_repeat_penalty(1);
  auto third = c_->StartSession(r, nullptr);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(third.status().message()),
              ::testing::HasSubstr("serves 2 concurrent sessions"));
  nodes_->AnswerAll(*c_);
  EXPECT_TRUE(out_a->done && out_b->done);
  // Their slots are free again.
  auto fourth = c_->StartSession(r, nullptr);
  EXPECT_TRUE(fourth.ok()) << fourth.status();
  c_->CancelSession((*fourth)->id());
}

TEST_F(CoordinatorTest, PromptsAreMeasuredFirstAndTheirSpecialTokensArePlainText) {
  Start(PlanPolicy::kEven, 1);
  v1::GenerateRequest r;
  r.set_n_predict(1);
  r.mutable_sampling()->set_top_p(1);
  r.mutable_sampling()->set_repeat_penalty(1);
  // Far longer than 128 positions of the longest token: refused before tokenizing.
  r.set_prompt(std::string(1 << 20, 'a'));
  auto s = c_->StartSession(r, nullptr);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(s.status().message()), ::testing::HasSubstr("cannot fit the context"));
  // "</s>" typed by a user is text, not the end-of-sequence token.
  r.set_prompt("Hello</s><s>");
  auto session = c_->StartSession(r, nullptr);
  ASSERT_TRUE(session.ok()) << session.status();
  const auto& ids = (*session)->state().request().prompt_ids;
  const TokenId eos = c_->tokenizer().eos(), bos = c_->tokenizer().bos();
  ASSERT_GT(ids.size(), 3u);
  EXPECT_EQ(ids[0], bos);
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_NE(ids[i], eos);
    EXPECT_NE(ids[i], bos);
  }
}

// Identity survives restarts: ids carry this coordinator run's suffix, a heartbeat counts
// only from the boot that registered, and a new process at the same address replaces the
// old record (the plan moves off it at once, without waiting for the heartbeat timeout).
TEST_F(CoordinatorTest, ANodeRestartedAtTheSameAddressIsANewNode) {
  Start(PlanPolicy::kEven, 2);
  const std::string a = Join("10.0.0.1:1");
  const std::string b = Join("10.0.0.2:1", 10, "boot-b1");
  EXPECT_NE(a, b);
  EXPECT_THAT(a, ::testing::MatchesRegex("node-[0-9]+\\.[0-9a-f]{6}"));
  c_->Tick();
  ASSERT_TRUE(c_->Status().ready());
  auto out = Generate(8);
  nodes_->Answer(*c_);
  // The same process registering again keeps its id.
  EXPECT_EQ(Join("10.0.0.2:1", 10, "boot-b1"), b);
  // Another process at that address is another node.
  const std::string b2 = Join("10.0.0.2:1", 10, "boot-b2");
  EXPECT_NE(b2, b);
  v1::HeartbeatRequest stale;
  stale.set_node_id(b);
  stale.set_boot_id("boot-b1");
  EXPECT_FALSE(c_->Heartbeat(stale).known());
  v1::HeartbeatRequest impostor;
  impostor.set_node_id(b2);
  impostor.set_boot_id("boot-b1");
  EXPECT_FALSE(c_->Heartbeat(impostor).known());
  c_->Tick();
  v1::StatusResponse s = c_->Status();
  ASSERT_TRUE(s.ready()) << s.reason();
  EXPECT_EQ(s.plan_epoch(), 2u);
  ASSERT_EQ(s.stages_size(), 2);
  EXPECT_EQ(s.stages(1).node_id(), b2);
  EXPECT_EQ(s.n_nodes(), 2);
  nodes_->AnswerAll(*c_);
  EXPECT_TRUE(out->done);
  EXPECT_EQ(out->tokens, Expected(8));
  // A coordinator run of its own gives other ids.
  Registry other({}, [] { return Clock::now(); });
  EXPECT_NE(other.Register("10.0.0.1:1", "boot-1", {}).id, a);
}

TEST_F(CoordinatorTest, HeartbeatsDisagreeingWithThePlanGetItAppliedAgain) {
  Start(PlanPolicy::kEven, 1);
  const std::string a = Join("10.0.0.1:1");
  c_->Tick();
  ASSERT_EQ(c_->Status().plan_epoch(), 1u);
  v1::HeartbeatRequest hb;
  hb.set_node_id(a);
  hb.set_boot_id("boot-1");
  hb.set_plan_epoch(0);  // lost its shard: it serves nothing
  hb.set_serving(false);
  EXPECT_TRUE(c_->Heartbeat(hb).in_plan());
  c_->Tick();
  EXPECT_EQ(c_->Status().plan_epoch(), 1u) << "one disagreement may be a heartbeat in flight";
  c_->Heartbeat(hb);
  c_->Tick();
  v1::StatusResponse s = c_->Status();
  ASSERT_TRUE(s.ready()) << s.reason();
  EXPECT_EQ(s.plan_epoch(), 2u);
  EXPECT_EQ(nodes_->configured()["10.0.0.1:1"].plan_epoch(), 2u);
}

// A node that answered its Configure serves: the cluster is not shown ready beside a node
// still "joining" until its next heartbeat. A heartbeat measured before the Configure does
// not undo that; a second one does (the node lost its shard).
TEST_F(CoordinatorTest, ConfiguredNodesShowAsServingBeforeTheirNextHeartbeat) {
  Start(PlanPolicy::kEven, 2);
  const std::string a = Join("10.0.0.1:1");
  const std::string b = Join("10.0.0.2:1");
  auto state_of = [&](const std::string& id) {
    const v1::StatusResponse s = c_->Status();
    for (const auto& n : s.nodes()) {
      if (n.node_id() == id) return n.state();
    }
    return std::string("missing");
  };
  EXPECT_EQ(state_of(a), "joining");
  c_->Tick();
  ASSERT_TRUE(c_->Status().ready());
  EXPECT_EQ(state_of(a), "serving");
  EXPECT_EQ(state_of(b), "serving");
  v1::HeartbeatRequest hb;
  hb.set_node_id(a);
  hb.set_boot_id("boot-1");
  hb.set_plan_epoch(0);
  hb.set_serving(false);
  c_->Heartbeat(hb);
  EXPECT_EQ(state_of(a), "serving") << "a heartbeat measured before the Configure";
  c_->Heartbeat(hb);
  EXPECT_EQ(state_of(a), "joining");
  Beat(b);
  EXPECT_EQ(state_of(b), "serving");
}

// A node without the model file says in each Configure's answer what its cache holds: a
// cache pruned to its limit stops being named as a source of the layers it dropped.
TEST_F(CoordinatorTest, ACachePrunedOnConfigureIsNoLongerASource) {
  Start(PlanPolicy::kEven, 2);
  auto join_fetching = [&](const std::string& address, std::vector<int> cached) {
    v1::RegisterRequest r;
    r.set_protocol_version(kProtocolVersion);
    r.set_address(address);
    r.set_boot_id("boot-1");
    r.set_model_fingerprint(fingerprint_);
    r.mutable_profile()->set_memory_bytes(1ull << 30);
    r.mutable_profile()->set_bandwidth_gbs(10);
    r.mutable_profile()->set_gflops(50);
    r.mutable_profile()->set_threads(1);
    r.set_fetches_weights(true);
    for (int l : cached) r.add_cached_layers(l);
    r.set_cached_embedding(!cached.empty());
    r.set_cached_head(!cached.empty());
    v1::RegisterResponse resp = c_->Register(r);
    EXPECT_TRUE(resp.accepted()) << resp.reason();
    return resp.node_id();
  };
  // Node A holds every layer at first; after its Configure its cache holds only its stage.
  join_fetching("10.0.0.1:1", {0, 1, 2, 3, 4});
  join_fetching("10.0.0.2:1", {});
  c_->Tick();
  v1::StatusResponse s = c_->Status();
  ASSERT_TRUE(s.ready()) << s.reason();
  ASSERT_EQ(s.stages_size(), 2);
  const std::string first = s.stages(0).address(), second = s.stages(1).address();
  const std::string first_id = s.stages(0).node_id(), second_id = s.stages(1).node_id();
  // The second stage (configured first) was told the first stage's node holds its layers
  // only when that node is A (B held nothing).
  const bool a_first = first == "10.0.0.1:1";
  EXPECT_EQ(nodes_->configured()[second].weight_sources_size(), a_first ? 1 : 0);
  // Now A's cache is pruned to its stage: it says so when configured again.
  v1::ConfigureResponse pruned;
  pruned.set_reports_cache(true);
  for (int l = s.stages(a_first ? 0 : 1).layer_first(); l < s.stages(a_first ? 0 : 1).layer_last();
       ++l) {
    pruned.add_cached_layers(l);
  }
  nodes_->Answer("10.0.0.1:1", pruned);
  // Both stages report no plan twice: the plan is applied again (the same split).
  auto disagree_twice = [&] {
    for (int i = 0; i < 2; ++i) {
      for (const std::string& id : {first_id, second_id}) {
        v1::HeartbeatRequest hb;
        hb.set_node_id(id);
        hb.set_boot_id("boot-1");
        hb.set_plan_epoch(0);
        c_->Heartbeat(hb);
      }
    }
    c_->Tick();
  };
  disagree_twice();  // epoch 2
  ASSERT_EQ(c_->Status().plan_epoch(), 2u);
  // Again, for epoch 3: A's answer at epoch 2 said it no longer holds the other stage.
  disagree_twice();
  ASSERT_EQ(c_->Status().plan_epoch(), 3u);
  const std::string other = a_first ? second : first;
  const v1::ConfigureRequest again = nodes_->configured()[other];
  for (const std::string& source : again.weight_sources()) {
    EXPECT_NE(source, "10.0.0.1:1") << "A's cache no longer holds " << other << "'s layers";
  }
}

// Liveness by progress: a session without a token for the stall timeout while a stage's
// heartbeats are late (but not yet timed out) fences that stage; the plan moves off it,
// the session replays with identical tokens, and the node returns after its backoff.
TEST_F(CoordinatorTest, AStageHoldingSessionsUpIsFencedAndComesBackAfterItsBackoff) {
  Start(PlanPolicy::kEven, 2,
        [](CoordinatorOptions& o) { o.stall_timeout = std::chrono::seconds(2); });
  const std::string a = Join("10.0.0.1:1");
  const std::string b = Join("10.0.0.2:1");
  c_->Tick();
  auto out = Generate(10);
  for (int i = 0; i < 3; ++i) nodes_->Answer(*c_);
  c_->Flush();
  now_ += std::chrono::milliseconds(1100);
  Beat(a);
  now_ += std::chrono::milliseconds(1100);
  Beat(a);     // b silent for 2.2 s: late, not dead (3 s)
  c_->Tick();  // fences b
  c_->Tick();  // plans without it
  v1::StatusResponse s = c_->Status();
  ASSERT_TRUE(s.ready()) << s.reason();
  EXPECT_EQ(s.plan_epoch(), 2u);
  ASSERT_EQ(s.stages_size(), 1);
  EXPECT_EQ(s.stages(0).node_id(), a);
  bool fenced = false;
  for (const auto& e : s.events()) fenced |= e.kind() == "fenced";
  EXPECT_TRUE(fenced);
  // b, running again, is told it is out of the plan (it frees its shard).
  EXPECT_FALSE(Beat(b).in_plan());
  nodes_->AnswerAll(*c_);
  EXPECT_TRUE(out->done);
  EXPECT_EQ(out->tokens, Expected(10));
  // After its 2 s backoff it is planned again.
  now_ += std::chrono::milliseconds(2100);
  Beat(a);
  Beat(b);
  c_->Tick();
  s = c_->Status();
  EXPECT_EQ(s.plan_epoch(), 3u);
  EXPECT_EQ(s.stages_size(), 2);
  EXPECT_THAT(c_->metrics_text(), ::testing::HasSubstr("tandem_fenced_nodes_total 1"));
}

// A frame or result lost on the way: every stage reports itself idle, yet the session
// waits. The plan is applied again under a new epoch and the session replays.
TEST_F(CoordinatorTest, ASessionStuckWhileEveryStageIsIdleIsReplayedUnderANewEpoch) {
  Start(PlanPolicy::kEven, 2);
  const std::string a = Join("10.0.0.1:1");
  const std::string b = Join("10.0.0.2:1");
  c_->Tick();
  auto out = Generate(6);
  nodes_->Answer(*c_);
  c_->Flush();
  (void)nodes_->all_sent();
  // The next frame is "lost": never answered.
  for (int i = 0; i < 7; ++i) {
    now_ += std::chrono::milliseconds(500);
    Beat(a);
    Beat(b);
    c_->Tick();
  }
  v1::StatusResponse s = c_->Status();
  EXPECT_EQ(s.plan_epoch(), 2u) << s.reason();
  EXPECT_EQ(s.stages_size(), 2);
  // The lost frame is dropped (its epoch is over): answering everything now finishes the
  // session from the replay, with the same tokens.
  nodes_->AnswerAll(*c_);
  EXPECT_TRUE(out->done);
  EXPECT_EQ(out->tokens, Expected(6));
}

// A stage that could not reach the next one names it: that one is fenced at once.
TEST_F(CoordinatorTest, AnUnreachableNextStageIsFencedAtOnce) {
  Start(PlanPolicy::kEven, 3);
  const std::string a = Join("10.0.0.1:1");
  const std::string b = Join("10.0.0.2:1");
  const std::string c = Join("10.0.0.3:1");
  c_->Tick();
  std::shared_ptr<Session> session;
  auto out = Generate(6, &session);
  c_->Flush();
  const v1::StatusResponse before = c_->Status();
  v1::StepResult r;
  r.set_session_id(session->id());
  r.set_plan_epoch(1);
  r.set_node_id(before.stages(0).node_id());
  r.set_code(static_cast<int>(absl::StatusCode::kUnavailable));
  r.set_message("the stage at ... is unreachable");
  EXPECT_TRUE(c_->OnResult(r).ok());
  c_->Tick();  // fences stage 1's node
  c_->Tick();  // plans without it
  v1::StatusResponse s = c_->Status();
  ASSERT_TRUE(s.ready()) << s.reason();
  EXPECT_EQ(s.plan_epoch(), 2u);
  EXPECT_EQ(s.stages_size(), 2);
  for (const auto& st : s.stages()) EXPECT_NE(st.node_id(), before.stages(1).node_id());
  nodes_->AnswerAll(*c_);
  EXPECT_EQ(out->tokens, Expected(6));
}

// SIGTERM on a node: its heartbeats say draining; the plan moves off it and its next
// heartbeat says it is out (it may exit).
TEST_F(CoordinatorTest, ADrainingNodeIsPlannedOutAndToldSo) {
  Start(PlanPolicy::kEven, 2);
  const std::string a = Join("10.0.0.1:1");
  const std::string b = Join("10.0.0.2:1");
  c_->Tick();
  auto out = Generate(8);
  nodes_->Answer(*c_);
  v1::HeartbeatRequest hb;
  hb.set_node_id(b);
  hb.set_boot_id("boot-1");
  hb.set_plan_epoch(1);
  hb.set_serving(true);
  hb.set_draining(true);
  EXPECT_TRUE(c_->Heartbeat(hb).in_plan());
  c_->Tick();
  v1::StatusResponse s = c_->Status();
  ASSERT_TRUE(s.ready()) << s.reason();
  EXPECT_EQ(s.plan_epoch(), 2u);
  ASSERT_EQ(s.stages_size(), 1);
  EXPECT_EQ(s.stages(0).node_id(), a);
  EXPECT_FALSE(c_->Heartbeat(hb).in_plan());
  nodes_->AnswerAll(*c_);
  EXPECT_EQ(out->tokens, Expected(8));
}

TEST(RegistryTest, DeadRecordsArePrunedAfterTheirRetentionAndBeyondTheCap) {
  Clock::time_point now = Clock::now();
  Registry r({.timeout = std::chrono::seconds(3),
              .dead_retention = std::chrono::seconds(60),
              .max_dead = 2},
             [&] { return now; });
  for (int i = 0; i < 4; ++i) r.Register("10.0.0." + std::to_string(i) + ":1", "boot", {});
  now += std::chrono::seconds(4);
  Registry::Expired e = r.Expire();
  EXPECT_EQ(e.dead.size(), 4u);
  EXPECT_EQ(e.pruned.size(), 2u);  // beyond the cap of 2
  EXPECT_EQ(r.All().size(), 2u);
  now += std::chrono::seconds(61);
  e = r.Expire();
  EXPECT_EQ(e.pruned.size(), 2u);  // past the retention
  EXPECT_TRUE(r.All().empty());
}

TEST(RegistryTest, FenceBackoffDoublesAndIsForgiven) {
  Clock::time_point now = Clock::now();
  Registry r({}, [&] { return now; });
  const std::string id = r.Register("10.0.0.1:1", "boot", {}).id;
  EXPECT_EQ(r.Fence(id), std::chrono::milliseconds(2000));
  EXPECT_FALSE(r.IsPlannable(id));
  now += std::chrono::milliseconds(2001);
  EXPECT_TRUE(r.IsPlannable(id));
  EXPECT_EQ(r.Fence(id), std::chrono::milliseconds(4000));
  EXPECT_EQ(r.Fence(id), std::chrono::milliseconds(8000));
  now += std::chrono::minutes(3);  // well behaved for long: strikes forgiven
  EXPECT_EQ(r.Fence(id), std::chrono::milliseconds(2000));
}

}  // namespace
}  // namespace tandem
