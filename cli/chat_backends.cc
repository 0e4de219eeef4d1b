#include "cli/chat_backends.h"

#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/prompt.h"
#include "api/request.h"
#include "api/server.h"
#include "api/sse.h"
#include "api/text_stream.h"
#include "base/status_macros.h"
#include "cli/model_loading.h"
#include "model/chat_template.h"
#include "net/client.h"
#include "node/local_engine.h"

namespace tandem::cli {
namespace {

// How often a streamed answer's watcher looks at `stop`.
constexpr auto kStopPoll = std::chrono::milliseconds(20);
// An error body longer than this is cut: it is only read for its message.
constexpr size_t kMaxErrorBody = 64 << 10;

struct HttpTarget {
  std::string host;
  int port = 0;
};

// The status an HTTP error answer stands for, with the API's message.
absl::Status HttpError(int http_status, const std::string& body) {
  std::string message = absl::StrCat("HTTP ", http_status);
  const auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_object() && json.contains("error") && json["error"].is_object() &&
      json["error"].value("message", nlohmann::json()).is_string()) {
    message = json["error"]["message"].get<std::string>();
  }
  switch (http_status) {
    case 400:
      return absl::InvalidArgumentError(message);
    case 401:
      return absl::UnauthenticatedError(message);
    case 429:
      return absl::ResourceExhaustedError(message);
    case 503:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

class RemoteChat : public ChatBackend {
 public:
  RemoteChat(HttpTarget target, std::string api_key, std::string model_id)
      : target_(std::move(target)), api_key_(std::move(api_key)), model_id_(std::move(model_id)) {}

  std::string Describe() const override {
    return absl::StrCat(model_id_, " on http://", target_.host, ":", target_.port, "/v1");
  }

  absl::StatusOr<ChatReply> Answer(const nlohmann::ordered_json& body,
                                   const std::function<void(std::string_view)>& on_text,
                                   const std::atomic<bool>& stop) override {
    nlohmann::ordered_json request = body;
    request["model"] = model_id_;
    request["stream"] = true;
    request["stream_options"] = {{"include_usage", true}};
    httplib::Client client(target_.host, target_.port);
    client.set_connection_timeout(5);
    client.set_read_timeout(std::chrono::hours(1));  // a long prefill sends nothing for a while
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.headers = AuthHeaders();
    req.set_header("Accept", "text/event-stream");
    req.body = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    req.set_header("Content-Type", "application/json");

    ChatReply reply;
    absl::Status failure;
    int http_status = 0;
    std::string error_body;
    api::SseReader events;
    req.response_handler = [&](const httplib::Response& res) {
      http_status = res.status;
      return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      if (http_status != 200) {
        error_body.append(data, std::min(n, kMaxErrorBody - error_body.size()));
        return error_body.size() < kMaxErrorBody;
      }
      return events.Feed(std::string_view(data, n), [&](const std::string& event) {
        if (event == "[DONE]" || !failure.ok()) return;
        const auto chunk = nlohmann::json::parse(event, nullptr, /*allow_exceptions=*/false);
        if (!chunk.is_object()) {
          failure = absl::InternalError("the API sent an event that is not JSON");
        } else if (chunk.contains("error")) {
          failure = HttpError(500, event);
        } else {
          Apply(chunk, on_text, &reply);
        }
      });
    };

    // Ctrl-C: stopping the client closes the connection, and the server cancels the
    // session (which frees its KV cache on every node).
    std::atomic<bool> finished{false};
    std::thread watcher([&] {
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals stay with the main thread
      while (!finished.load()) {
        if (stop.load()) {
          client.stop();
          return;
        }
        std::this_thread::sleep_for(kStopPoll);
      }
    });
    httplib::Response res;
    httplib::Error error = httplib::Error::Success;
    const bool sent = client.send(req, res, error);
    finished = true;
    watcher.join();
    if (stop.load()) {
      reply.finish_reason = "interrupted";
      return reply;
    }
    if (!failure.ok()) return failure;
    if (http_status != 0 && http_status != 200) return HttpError(http_status, error_body);
    if (!sent) {
      return absl::UnavailableError(absl::StrCat("the API at ", target_.host, ":", target_.port,
                                                 " failed: ", httplib::to_string(error)));
    }
    if (reply.finish_reason.empty()) {
      return absl::UnavailableError("the answer ended before the API finished it");
    }
    return reply;
  }

 private:
  httplib::Headers AuthHeaders() const {
    httplib::Headers h;
    if (!api_key_.empty()) h.emplace("Authorization", "Bearer " + api_key_);
    return h;
  }

  // One streamed chunk: text, the finish reason, or the usage that ends the stream.
  static void Apply(const nlohmann::json& chunk,
                    const std::function<void(std::string_view)>& on_text, ChatReply* reply) {
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
      reply->prompt_tokens = chunk["usage"].value("prompt_tokens", int64_t{0});
      reply->completion_tokens = chunk["usage"].value("completion_tokens", int64_t{0});
    }
    if (!chunk.contains("choices") || !chunk["choices"].is_array() || chunk["choices"].empty()) {
      return;
    }
    const nlohmann::json& choice = chunk["choices"][0];
    if (choice.contains("delta") && choice["delta"].is_object()) {
      const nlohmann::json& content = choice["delta"].value("content", nlohmann::json());
      if (content.is_string() && !content.get_ref<const std::string&>().empty()) {
        const std::string& text = content.get_ref<const std::string&>();
        reply->text += text;
        on_text(text);
      }
    }
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      reply->finish_reason = choice["finish_reason"].get<std::string>();
    }
  }

  const HttpTarget target_;
  const std::string api_key_;
  const std::string model_id_;
};

// "http://HOST:PORT[/...]" -> HOST, PORT.
absl::StatusOr<HttpTarget> ParseUrl(const std::string& url) {
  if (absl::StartsWith(url, "https://")) {
    return absl::InvalidArgumentError("tandem chat speaks plain HTTP; https:// is not supported");
  }
  std::string rest = url.substr(std::string("http://").size());
  rest = rest.substr(0, rest.find('/'));
  HttpTarget t;
  TANDEM_RETURN_IF_ERROR(api::ParseHostPort(rest, &t.host, &t.port));
  return t;
}

bool IsWildcard(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChatBackend>> ConnectChat(const std::string& address,
                                                         const std::string& api_key) {
  HttpTarget target;
  std::string why_not_grpc;
  if (absl::StartsWith(address, "http://") || absl::StartsWith(address, "https://")) {
    TANDEM_ASSIGN_OR_RETURN(target, ParseUrl(address));
  } else {
    std::string host;
    int port = 0;
    TANDEM_RETURN_IF_ERROR(api::ParseHostPort(address, &host, &port));
    auto status = RemoteStatus(address, 3000);
    if (status.ok()) {
      if (status->http_address().empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the coordinator at ", address,
            " serves no HTTP API, which tandem chat talks to: start it with --http HOST:PORT"));
      }
      TANDEM_RETURN_IF_ERROR(
          api::ParseHostPort(status->http_address(), &target.host, &target.port));
      // An API listening on every interface is reached where the coordinator was.
      if (IsWildcard(target.host)) target.host = host;
    } else {
      // Not a coordinator's gRPC port: perhaps the API's own address.
      why_not_grpc = std::string(status.status().message());
      target = {host, port};
    }
  }
  httplib::Client client(target.host, target.port);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  httplib::Headers headers;
  if (!api_key.empty()) headers.emplace("Authorization", "Bearer " + api_key);
  httplib::Result models = client.Get("/v1/models", headers);
  const std::string where = absl::StrCat(target.host, ":", target.port);
  if (!models) {
    return absl::UnavailableError(
        why_not_grpc.empty()
            ? absl::StrCat("cannot reach the API at ", where, ": ",
                           httplib::to_string(models.error()))
            : absl::StrCat("no coordinator or API answers at ", address, " (gRPC: ", why_not_grpc,
                           "; HTTP: ", httplib::to_string(models.error()), ")"));
  }
  if (models->status != 200) return HttpError(models->status, models->body);
  const auto list = nlohmann::json::parse(models->body, nullptr, /*allow_exceptions=*/false);
  if (!list.is_object() || !list.contains("data") || !list["data"].is_array() ||
      list["data"].empty() || !list["data"][0].value("id", nlohmann::json()).is_string()) {
    return absl::UnavailableError(absl::StrCat("GET /v1/models at ", where, " lists no model"));
  }
  return std::make_unique<RemoteChat>(target, api_key, list["data"][0]["id"].get<std::string>());
}

namespace {

class LocalChat : public ChatBackend {
 public:
  LocalChat(LoadedModel model, std::unique_ptr<LocalEngine> engine, ChatTemplate chat_template,
            std::string path)
      : model_(std::move(model)),
        engine_(std::move(engine)),
        chat_template_(std::move(chat_template)),
        path_(std::move(path)) {}

  std::string Describe() const override { return absl::StrCat(path_, " in this process"); }

  absl::StatusOr<ChatReply> Answer(const nlohmann::ordered_json& body,
                                   const std::function<void(std::string_view)>& on_text,
                                   const std::atomic<bool>& stop) override {
    TANDEM_ASSIGN_OR_RETURN(
        api::ApiRequest request,
        api::ParseApiRequest(api::Endpoint::kChatCompletions, body.dump(), std::random_device{}()));
    TANDEM_ASSIGN_OR_RETURN(
        api::PreparedGeneration prepared,
        api::PrepareGeneration(request, chat_template_, *model_.tokenizer, engine_->n_ctx()));
    const Tokenizer& tokenizer = *model_.tokenizer;
    const std::vector<TokenId>& stop_ids = prepared.request.stop_ids;
    api::TextStream text(std::move(prepared.stop_strings));
    ChatReply reply;
    reply.prompt_tokens = static_cast<int64_t>(prepared.request.prompt_ids.size());
    auto emit = [&](const std::string& piece) {
      if (piece.empty()) return;
      reply.text += piece;
      on_text(piece);
    };
    auto is_stop = [&](TokenId id) {
      return tokenizer.IsEog(id) ||
             std::find(stop_ids.begin(), stop_ids.end(), id) != stop_ids.end();
    };
    bool by_token = false;
    auto result = engine_->Generate(
        prepared.request, [&](TokenId id) { return tokenizer.IsEog(id); },
        [&](TokenId id) {
          ++reply.completion_tokens;
          by_token = is_stop(id);
          emit(text.Feed(tokenizer.TokenToPiece(id, /*render_special=*/false)));
          if (text.stopped()) {
            reply.finish_reason = "stop";
            return false;
          }
          if (stop.load()) {
            reply.finish_reason = "interrupted";
            return false;
          }
          return true;
        });
    if (!result.ok()) return result.status();
    if (reply.finish_reason.empty()) {
      emit(text.Finish());
      reply.finish_reason = by_token ? "stop" : "length";
    }
    return reply;
  }

 private:
  LoadedModel model_;
  std::unique_ptr<LocalEngine> engine_;
  ChatTemplate chat_template_;
  std::string path_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ChatBackend>> LoadLocalChat(const LocalChatOptions& o) {
  TANDEM_ASSIGN_OR_RETURN(LoadedModel model, LoadModel(o.model));
  const Vocab& vocab = model.tokenizer->vocab();
  TANDEM_ASSIGN_OR_RETURN(ChatTemplate chat_template,
                          o.chat_template.empty() ? ChatTemplate::FromGguf(*model.file, vocab)
                                                  : ChatTemplate::FromFile(o.chat_template, vocab));
  const int threads =
      o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<LocalEngine> engine,
                          LocalEngine::Create(model.file, {threads, o.ctx_size}));
  return std::make_unique<LocalChat>(std::move(model), std::move(engine), std::move(chat_template),
                                     o.model);
}

}  // namespace tandem::cli
