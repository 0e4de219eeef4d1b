// `tandem chat`: an interactive chat in the terminal, with a running cluster
// (--coordinator) or a model in this process (-m). The conversation's history goes with
// every turn; answers stream as they are generated. Ctrl-C stops the answer in progress
// (the cluster frees its session); Ctrl-C at the prompt, Ctrl-D or /exit ends the chat.
// Answers go to stdout, the banner, prompts and notes to stderr, so a transcript of the
// answers can be piped or saved.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "api/server.h"
#include "cli/chat_backends.h"
#include "cli/commands.h"
#include "cli/model_loading.h"

namespace tandem::cli {
namespace {

struct ChatOptions {
  std::string coordinator;
  std::string api_key_file;
  LocalChatOptions local;
  std::string system;
  int32_t n_predict = 0;  // 0: until the end of the turn (or of the context)
  // Sent only when given: the API's defaults hold otherwise.
  double temperature = 1;
  double top_p = 1;
  int64_t seed = 0;
  bool has_temperature = false, has_top_p = false, has_seed = false;
};

std::atomic<bool> interrupted{false};

void OnInterrupt(int) { interrupted = true; }

// SIGINT sets `interrupted` and, unlike the default, does not restart a wait in progress,
// so a Ctrl-C at the prompt ends the wait.
void CatchInterrupts() {
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
}

// Lines from a file descriptor. SIGINT waits while a read is under way except inside the
// wait for input (ppoll), so a Ctrl-C just before the wait still ends it.
class LineReader {
 public:
  enum class Result { kLine, kEnd, kInterrupted };
  static constexpr size_t kMaxLineBytes = 1 << 20;

  explicit LineReader(int fd) : fd_(fd) {}
  Result Read(std::string* line) {
    sigset_t sigint, waiting;
    sigemptyset(&sigint);
    sigaddset(&sigint, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigint, &waiting);
    absl::Cleanup restore = [&] { pthread_sigmask(SIG_SETMASK, &waiting, nullptr); };
    for (;;) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos || buffer_.size() >= kMaxLineBytes) {
        const size_t cut = nl == std::string::npos ? buffer_.size() : nl;
        *line = buffer_.substr(0, cut);
        buffer_.erase(0, nl == std::string::npos ? cut : cut + 1);
        return Result::kLine;
      }
      if (ended_) {
        if (buffer_.empty()) return Result::kEnd;
        line->swap(buffer_);
        buffer_.clear();
        return Result::kLine;
      }
      if (interrupted.load()) return Result::kInterrupted;
      pollfd p{fd_, POLLIN, 0};
      if (::ppoll(&p, 1, nullptr, &waiting) < 0) continue;  // EINTR: `interrupted` tells
      char chunk[4096];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ended_ = true;
        continue;
      }
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  const int fd_;
  std::string buffer_;
  bool ended_ = false;
};

nlohmann::ordered_json Request(const ChatOptions& o, const nlohmann::ordered_json& history) {
  nlohmann::ordered_json body = {{"messages", history}};
  if (o.n_predict > 0) body["max_tokens"] = o.n_predict;
  if (o.has_temperature) body["temperature"] = o.temperature;
  if (o.has_top_p) body["top_p"] = o.top_p;
  if (o.has_seed) body["seed"] = o.seed;
  return body;
}

nlohmann::ordered_json NewHistory(const std::string& system) {
  nlohmann::ordered_json history = nlohmann::ordered_json::array();
  if (!system.empty()) history.push_back({{"role", "system"}, {"content", system}});
  return history;
}

int RunChat(const ChatOptions& o) {
  if (o.coordinator.empty() == o.local.model.empty()) {
    return ReportError(absl::InvalidArgumentError(
        "give a running cluster (--coordinator HOST:PORT) or a model (-m MODEL), one of them"));
  }
  // Threads the backend starts leave SIGINT to this one, whose reads it interrupts.
  sigset_t sigint;
  sigemptyset(&sigint);
  sigaddset(&sigint, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigint, nullptr);
  absl::StatusOr<std::unique_ptr<ChatBackend>> backend;
  if (!o.coordinator.empty()) {
    std::string key;
    if (!o.api_key_file.empty()) {
      auto keys = api::ReadApiKeys(o.api_key_file);
      if (!keys.ok()) return ReportError(keys.status());
      key = keys->front();
    } else if (const char* env = std::getenv("OPENAI_API_KEY")) {
      key = env;
    }
    backend = ConnectChat(o.coordinator, key);
  } else {
    backend = LoadLocalChat(o.local);
  }
  if (!backend.ok()) return ReportError(backend.status());
  CatchInterrupts();
  pthread_sigmask(SIG_UNBLOCK, &sigint, nullptr);

  const bool terminal = ::isatty(STDIN_FILENO) == 1;
  std::fprintf(stderr,
               "tandem chat with %s\nCtrl-C stops an answer; Ctrl-C at the prompt, Ctrl-D or "
               "/exit ends the chat; /reset forgets the conversation.\n",
               (*backend)->Describe().c_str());
  nlohmann::ordered_json history = NewHistory(o.system);
  LineReader input(STDIN_FILENO);
  for (;;) {
    interrupted = false;
    std::fputs("> ", stderr);
    std::fflush(stderr);
    std::string line;
    const LineReader::Result read = input.Read(&line);
    if (read != LineReader::Result::kLine) {
      if (terminal || read == LineReader::Result::kInterrupted) std::fputc('\n', stderr);
      break;
    }
    const std::string message(absl::StripAsciiWhitespace(line));
    if (message.empty()) continue;
    if (message == "/exit" || message == "/quit") break;
    if (message == "/reset") {
      history = NewHistory(o.system);
      std::fputs("(the conversation is forgotten)\n", stderr);
      continue;
    }
    history.push_back({{"role", "user"}, {"content", message}});
    bool wrote = false;
    auto reply = (*backend)->Answer(
        Request(o, history),
        [&](std::string_view text) {
          std::fwrite(text.data(), 1, text.size(), stdout);
          std::fflush(stdout);
          wrote = true;
        },
        interrupted);
    if (!reply.ok()) {
      if (wrote) std::fputc('\n', stdout);
      std::fflush(stdout);
      const std::string why(reply.status().message());
      // An overlong conversation: the way on is a new one.
      const bool full = absl::StrContains(why, "context");
      std::fprintf(stderr, "tandem chat: %s%s\n", why.c_str(),
                   full ? " (/reset starts a new conversation)" : "");
      history.erase(history.size() - 1);  // the question goes unanswered
      continue;
    }
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (reply->finish_reason == "interrupted") std::fputs("(stopped)\n", stderr);
    if (reply->finish_reason == "length" && o.n_predict == 0) {
      std::fputs("(the context is full: /reset starts a new conversation)\n", stderr);
    }
    history.push_back({{"role", "assistant"}, {"content", reply->text}});
  }
  return 0;
}

}  // namespace

void RegisterChatCommand(CLI::App& app, RunState& state) {
  auto o = std::make_shared<ChatOptions>();
  CLI::App* cmd = app.add_subcommand("chat", "Chat in the terminal with a cluster or a model");
  cmd->add_option("--coordinator", o->coordinator,
                  "A running cluster: its coordinator's HOST:PORT (which serves --http), or "
                  "the API's HOST:PORT or http:// URL");
  cmd->add_option("-m,--model", o->local.model, "GGUF model file (runs in this process)");
  cmd->add_option("--api-key-file", o->api_key_file,
                  "With --coordinator: the API key (the file's first line; default: "
                  "$OPENAI_API_KEY)");
  cmd->add_option("--system", o->system, "A system message that starts the conversation");
  cmd->add_option("-n,--n-predict", o->n_predict,
                  "Most tokens per answer (default: until the end of the turn)")
      ->check(CLI::NonNegativeNumber);
  CLI::Option* temperature =
      cmd->add_option("--temp", o->temperature, "Temperature (0: greedy; default: the API's, 1)");
  CLI::Option* top_p = cmd->add_option("--top-p", o->top_p, "Top-p (default: 1)");
  CLI::Option* seed =
      cmd->add_option("--seed", o->seed, "Random seed of every answer (default: random)");
  cmd->add_option("--chat-template", o->local.chat_template,
                  "With -m: Jinja chat template file replacing the model's");
  cmd->add_option("-t,--threads", o->local.threads, "With -m: threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-c,--ctx-size", o->local.ctx_size,
                  "With -m: context length (default: the "
                  "model's)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([o, &state, temperature, top_p, seed] {
    o->has_temperature = temperature->count() > 0;
    o->has_top_p = top_p->count() > 0;
    o->has_seed = seed->count() > 0;
    state.exit_code = RunChat(*o);
  });
}

}  // namespace tandem::cli
