// The OpenAI-compatible routes on an HttpServer: GET /v1/models, POST /v1/chat/completions,
// POST /v1/completions and GET /health. A request is checked (400), the cluster must be
// ready (503) and under the admission limit (429), then it runs as a coordinator session
// in this process, alongside every other session in the pipeline's batches.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>

#include "api/admission.h"
#include "api/request.h"
#include "coordinator/coordinator.h"
#include "model/chat_template.h"

namespace tandem::api {

struct OpenAiOptions {
  int max_sessions = 8;  // generations in flight; one more gets 429
  std::string model_id;  // empty: the model file's name without ".gguf"
};

class OpenAiRoutes {
 public:
  OpenAiRoutes(Coordinator& coordinator, ChatTemplate chat_template, OpenAiOptions options);
  OpenAiRoutes(const OpenAiRoutes&) = delete;
  OpenAiRoutes& operator=(const OpenAiRoutes&) = delete;

  // The routes keep a reference to this object: it must outlive the server.
  void Register(httplib::Server& server);
  const std::string& model_id() const { return model_id_; }

 private:
  void Models(httplib::Response& res) const;
  void Health(httplib::Response& res);
  void Generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res);

  Coordinator& c_;
  const ChatTemplate chat_template_;
  std::string model_id_;
  const int64_t created_;
  Admission admission_;
};

}  // namespace tandem::api
