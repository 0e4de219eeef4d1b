#include "api/openai_routes.h"

#include <chrono>
#include <filesystem>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "api/api_error.h"
#include "api/connection_watch.h"
#include "api/generation.h"
#include "api/prompt.h"
#include "api/responses.h"
#include "api/server.h"
#include "api/sse.h"

namespace tandem::api {
namespace {

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// How often a non-streamed request that waits for its next token checks its client.
constexpr std::chrono::milliseconds kConnectionCheckInterval{50};

uint64_t RandomU64() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

// One streamed answer: what the content provider needs between calls. Dropping it (the
// response is done, or the client left) cancels the session and frees the admission place.
struct StreamState {
  std::unique_ptr<Admission::Ticket> ticket;
  std::unique_ptr<Generation> generation;
  std::unique_ptr<ResponseEncoder> encoder;
  bool chat = false;
  bool include_usage = false;
  bool logprobs = false;
  bool started = false;
};

// The next SSE events of a stream, and whether it is over.
std::string NextEvents(StreamState& s, bool* over) {
  std::string out;
  if (!s.started) {
    s.started = true;
    if (s.chat) return SseEvent(s.encoder->RoleChunk());
  }
  absl::StatusOr<Delta> d = s.generation->Next();
  if (!d.ok()) {
    // Headers are sent: the error travels as an event, as OpenAI's streams do.
    const ApiError e = ApiErrorFromStatus(d.status());
    out += "data: " + ApiErrorBody(e) + "\n\n";
    out += kSseDone;
    *over = true;
    return out;
  }
  if (!d->text.empty() || d->finished || (s.logprobs && !d->tokens.empty())) {
    out += SseEvent(s.encoder->Chunk(*d, s.include_usage));
  }
  if (d->finished) {
    if (s.include_usage) {
      out += SseEvent(
          s.encoder->UsageChunk(s.generation->prompt_tokens(), s.generation->completion_tokens()));
    }
    out += kSseDone;
    *over = true;
  }
  return out;
}

}  // namespace

OpenAiRoutes::OpenAiRoutes(Coordinator& c, ChatTemplate chat_template, OpenAiOptions options)
    : c_(c),
      chat_template_(std::move(chat_template)),
      model_id_(options.model_id),
      created_(UnixSeconds()),
      admission_(options.max_sessions) {
  if (model_id_.empty()) {
    model_id_ = std::filesystem::path(c_.model_path()).filename().string();
    if (absl::EndsWith(model_id_, ".gguf")) model_id_.resize(model_id_.size() - 5);
  }
}

void OpenAiRoutes::Register(httplib::Server& server) {
  server.Get("/v1/models",
             [this](const httplib::Request&, httplib::Response& res) { Models(res); });
  server.Get("/health", [this](const httplib::Request&, httplib::Response& res) { Health(res); });
  server.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    Generate(Endpoint::kChatCompletions, req, res);
  });
  server.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    Generate(Endpoint::kCompletions, req, res);
  });
}

void OpenAiRoutes::Models(httplib::Response& res) const {
  SendJson(res, {{"object", "list"},
                 {"data",
                  {{{"id", model_id_},
                    {"object", "model"},
                    {"created", created_},
                    {"owned_by", "tandem"},
                    {"context_length", c_.n_ctx()}}}}});
}

void OpenAiRoutes::Health(httplib::Response& res) {
  const v1::StatusResponse status = c_.Status();
  // Each node's sessions (KV caches held) as of its last heartbeat: a cancelled session
  // shows here as freed on every node.
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& n : status.nodes()) {
    nodes.push_back({{"id", n.node_id()}, {"address", n.address()}, {"sessions", n.sessions()}});
  }
  nlohmann::json body = {{"status", status.ready() ? "ok" : "unavailable"},
                         {"ready", status.ready()},
                         {"sessions", c_.active_sessions()},
                         {"cancelled_sessions", c_.cancelled_sessions()},
                         {"in_flight", admission_.in_flight()},
                         {"max_sessions", admission_.limit()},
                         {"nodes", std::move(nodes)}};
  if (!status.ready()) body["reason"] = status.reason();
  SendJson(res, body, status.ready() ? 200 : 503);
  if (!status.ready()) res.set_header("Retry-After", "1");
}

void OpenAiRoutes::Generate(Endpoint endpoint, const httplib::Request& req,
                            httplib::Response& res) {
  absl::StatusOr<ApiRequest> request = ParseApiRequest(endpoint, req.body, RandomU64());
  if (!request.ok()) return SendError(res, request.status());
  absl::StatusOr<PreparedGeneration> prepared =
      PrepareGeneration(*request, chat_template_, c_.tokenizer(), c_.n_ctx());
  if (!prepared.ok()) return SendError(res, prepared.status());
  if (!c_.ready()) {
    return SendError(res, absl::UnavailableError(
                              absl::StrCat("the cluster is not ready: ", c_.not_ready_reason())));
  }
  std::unique_ptr<Admission::Ticket> ticket = admission_.TryAdmit();
  if (!ticket) {
    return SendError(
        res, absl::ResourceExhaustedError(absl::StrCat(admission_.limit(),
                                                       " generations are in flight, the most this "
                                                       "server admits; retry shortly")));
  }
  auto generation =
      Generation::Start(c_, std::move(prepared->request), std::move(prepared->stop_strings));
  if (!generation.ok()) return SendError(res, generation.status());

  const bool chat = endpoint == Endpoint::kChatCompletions;
  const std::string id = absl::StrFormat("%s-%016x", chat ? "chatcmpl" : "cmpl", RandomU64());
  auto encoder = std::make_unique<ResponseEncoder>(endpoint, id, UnixSeconds(), model_id_,
                                                   c_.tokenizer(), request->sampling.logprobs);
  if (!request->stream) {
    // Nothing is written until the answer is whole: watch the connection, so a client that
    // leaves cancels its session now rather than when the answer is done.
    const ConnectionWatch watch(req);
    std::string text;
    std::vector<GeneratedToken> tokens;
    std::string finish_reason;
    while (!(*generation)->finished()) {
      const bool ready = (*generation)->WaitForEvent(kConnectionCheckInterval);
      if (watch.Closed()) return;  // the generation's destructor cancels the session
      if (!ready) continue;
      absl::StatusOr<Delta> d = (*generation)->Next();
      if (!d.ok()) return SendError(res, d.status());
      text += d->text;
      for (GeneratedToken& t : d->tokens) tokens.push_back(std::move(t));
      finish_reason = d->finish_reason;
    }
    SendJson(res, encoder->Whole(text, tokens, finish_reason, (*generation)->prompt_tokens(),
                                 (*generation)->completion_tokens()));
    return;
  }
  auto state = std::make_shared<StreamState>();
  state->ticket = std::move(ticket);
  state->generation = *std::move(generation);
  state->encoder = std::move(encoder);
  state->chat = chat;
  state->include_usage = request->include_usage;
  state->logprobs = request->sampling.logprobs;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [state](size_t, httplib::DataSink& sink) {
        bool over = false;
        const std::string events = NextEvents(*state, &over);
        // A failed write: the client is gone; returning false ends the response, and
        // the releaser cancels the session.
        if (!events.empty() && !sink.write(events.data(), events.size())) return false;
        if (over) sink.done();
        return true;
      },
      [state](bool) {
        state->generation.reset();
        state->ticket.reset();
      });
}

}  // namespace tandem::api
