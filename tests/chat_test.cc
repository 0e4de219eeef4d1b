// `tandem chat` as a person uses it, with real processes: two turns piped in give, turn by
// turn, the answers the cluster's chat API gives for the same history (from a cluster and
// in process alike); Ctrl-C stops an answer, whose session the cluster cancels, and the
// chat goes on; Ctrl-C at the prompt ends it. Only 127.0.0.1.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/golden_support.h"
#include "tests/local_cluster.h"

extern char** environ;

namespace tandem {
namespace {

using ::testing::HasSubstr;
using testing::SharedPath;

const std::string kModel = SharedPath("models/stories260K-f32.gguf");
// Past the model's 128 positions, so an answer to the end of the context takes a while.
constexpr int kContext = 1024;

// A running `tandem` with pipes to its stdin, stdout and stderr.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int in[2], out[2], err[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0 || ::pipe(err) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) {
      posix_spawn_file_actions_addclose(&actions, fd);
    }
    std::vector<char*> argv;
    const std::string binary = testing::TandemBinary();
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ) != 0) pid_ = 0;
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    stderr_ = err[0];
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    for (int fd : {stdin_, stdout_, stderr_}) {
      if (fd >= 0) ::close(fd);
    }
  }
  pid_t pid() const { return pid_; }
  void Write(const std::string& text) {
    ASSERT_EQ(::write(stdin_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }
  void Interrupt() { ::kill(pid_, SIGINT); }

  // Reads what is there until `done` holds (true) or `timeout` passes (false).
  bool ReadUntil(const std::function<bool()>& done,
                 std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd fds[2] = {{stdout_, POLLIN, 0}, {stderr_, POLLIN, 0}};
      if (::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 100))) <= 0) continue;
      char buf[4096];
      if (fds[0].revents) {
        const ssize_t n = ::read(stdout_, buf, sizeof buf);
        if (n > 0) out.append(buf, static_cast<size_t>(n));
      }
      if (fds[1].revents) {
        const ssize_t n = ::read(stderr_, buf, sizeof buf);
        if (n > 0) err.append(buf, static_cast<size_t>(n));
      }
    }
    return true;
  }
  // The exit code, waiting up to `timeout`; -1 when it is still running.
  int Wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  bool Running() {
    int status = 0;
    return ::waitpid(pid_, &status, WNOHANG) == 0;
  }

  std::string out, err;

 private:
  pid_t pid_ = 0;
  bool exited_ = false;
  int stdin_ = -1, stdout_ = -1, stderr_ = -1;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class ChatTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new testing::LocalCluster();
    testing::ClusterOptions o;
    o.model = kModel;
    o.nodes = 2;
    o.coordinator_args = {
        "--http", "127.0.0.1:0",           "--http-port-file", cluster_->dir() + "/http.port",
        "-c",     std::to_string(kContext)};
    const absl::Status s = cluster_->Start(o);
    ASSERT_TRUE(s.ok()) << s;
    std::ifstream(cluster_->dir() + "/http.port") >> http_port_;
    ASSERT_GT(http_port_, 0);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  // What POST /v1/chat/completions answers for `messages`, greedy.
  static std::string ApiAnswer(const nlohmann::json& messages, int max_tokens) {
    httplib::Client client("127.0.0.1", http_port_);
    client.set_read_timeout(60);
    const nlohmann::json body = {
        {"messages", messages}, {"max_tokens", max_tokens}, {"temperature", 0}};
    auto r = client.Post("/v1/chat/completions", body.dump(), "application/json");
    EXPECT_TRUE(r) << "the API did not answer";
    if (!r) return "";
    EXPECT_EQ(r->status, 200) << r->body;
    return nlohmann::json::parse(r->body)["choices"][0]["message"]["content"];
  }
  static nlohmann::json Health() {
    httplib::Client client("127.0.0.1", http_port_);
    auto r = client.Get("/health");
    return r ? nlohmann::json::parse(r->body) : nlohmann::json();
  }

  static testing::LocalCluster* cluster_;
  static int http_port_;
};
testing::LocalCluster* ChatTest::cluster_ = nullptr;
int ChatTest::http_port_ = 0;

// Two turns piped in: each answer is the API's answer to the history so far, whether the
// chat talks to the cluster (by its coordinator's address or the API's) or runs the model
// in this process.
TEST_F(ChatTest, TwoPipedTurnsGetTheApisAnswersForTheSameHistory) {
  const std::string first = "Tell me about a dog", second = "What did the dog eat?";
  const std::string input = cluster_->dir() + "/turns.txt";
  std::ofstream(input) << first << "\n" << second << "\n";
  constexpr int kTokens = 12;
  nlohmann::json messages = {{{"role", "user"}, {"content", first}}};
  const std::string a1 = ApiAnswer(messages, kTokens);
  messages.push_back({{"role", "assistant"}, {"content", a1}});
  messages.push_back({{"role", "user"}, {"content", second}});
  const std::string a2 = ApiAnswer(messages, kTokens);
  ASSERT_FALSE(a1.empty());
  ASSERT_FALSE(a2.empty());
  const std::string expected = a1 + "\n" + a2 + "\n";

  const std::string options = " --temp 0 -n " + std::to_string(kTokens) + " < " + input;
  for (const std::string& where : {"--coordinator " + cluster_->address(),
                                   "--coordinator 127.0.0.1:" + std::to_string(http_port_),
                                   "-m " + kModel + " -t 1 -c " + std::to_string(kContext)}) {
    testing::CommandResult r = testing::RunTandem("chat " + where + options);
    EXPECT_EQ(r.exit_code, 0) << where << "\n" << r.err;
    EXPECT_EQ(r.out, expected) << where << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("tandem chat with ")) << where;
  }
}

// Ctrl-C during an answer stops it (the cluster cancels the session and frees it on every
// node), the chat goes on, and Ctrl-C at the prompt ends it.
TEST_F(ChatTest, CtrlCStopsTheAnswerAndCtrlCAtThePromptEndsTheChat) {
  const uint64_t cancelled_before = Health()["cancelled_sessions"].get<uint64_t>();
  Child chat({"chat", "--coordinator", cluster_->address(), "--temp", "0"});
  ASSERT_GT(chat.pid(), 0);
  ASSERT_TRUE(chat.ReadUntil([&] { return Count(chat.err, "> ") == 1; })) << chat.err;
  chat.Write("Tell me a long story\n");  // greedy to the end of the 1024-token context
  ASSERT_TRUE(chat.ReadUntil([&] { return !chat.out.empty(); })) << chat.err;
  chat.Interrupt();
  ASSERT_TRUE(chat.ReadUntil([&] { return Count(chat.err, "> ") == 2; })) << chat.err;
  EXPECT_THAT(chat.err, HasSubstr("(stopped)"));
  EXPECT_TRUE(chat.Running());
  const size_t stopped_at = chat.out.size();
  // The stopped answer's session is cancelled and freed on every node.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  nlohmann::json h;
  for (;;) {
    h = Health();
    bool freed = h["sessions"] == 0;
    for (const auto& n : h["nodes"]) freed = freed && n["sessions"] == 0;
    if (h["cancelled_sessions"].get<uint64_t>() == cancelled_before + 1 && freed) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << h.dump();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // The chat goes on with the next question.
  chat.Write("/reset\nHello\n");
  ASSERT_TRUE(chat.ReadUntil([&] { return Count(chat.err, "> ") == 4; })) << chat.err;
  EXPECT_GT(chat.out.size(), stopped_at + 1);
  chat.Interrupt();
  EXPECT_EQ(chat.Wait(std::chrono::seconds(10)), 0) << chat.err;
}

TEST_F(ChatTest, ClearErrorsForNoTargetAndNoCluster) {
  testing::CommandResult none = testing::RunTandem("chat < /dev/null");
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("--coordinator HOST:PORT"));
  testing::CommandResult gone = testing::RunTandem("chat --coordinator 127.0.0.1:1 < /dev/null");
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_THAT(gone.err, HasSubstr("no coordinator or API answers at 127.0.0.1:1"));
}

}  // namespace
}  // namespace tandem
