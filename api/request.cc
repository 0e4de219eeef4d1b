#include "api/request.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "api/api_error.h"

namespace tandem::api {
namespace {

using Json = nlohmann::json;

// A present, non-null field, or nullptr (OpenAI treats null as absent).
const Json* Field(const Json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

absl::StatusOr<double> Number(const Json& v, const char* name, double lo, double hi) {
  if (!v.is_number()) return InvalidParam(name, absl::StrCat("'", name, "' must be a number"));
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    return InvalidParam(
        name, absl::StrCat("'", name, "' must be between ", lo, " and ", hi, ", got ", v.dump()));
  }
  return x;
}

absl::StatusOr<int64_t> Integer(const Json& v, const char* name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) {
    return InvalidParam(name, absl::StrCat("'", name, "' must be an integer"));
  }
  // Unsigned values above int64 are out of range whatever the bounds.
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi)) {
    return InvalidParam(name, absl::StrCat("'", name, "' must be at most ", hi));
  }
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) {
    return InvalidParam(
        name, absl::StrCat("'", name, "' must be between ", lo, " and ", hi, ", got ", x));
  }
  return x;
}

absl::StatusOr<bool> Bool(const Json& v, const char* name) {
  if (!v.is_boolean()) return InvalidParam(name, absl::StrCat("'", name, "' must be a boolean"));
  return v.get<bool>();
}

// Message content: a string, or a list of {"type": "text", "text": ...} parts.
absl::StatusOr<std::string> MessageContent(const Json& content, size_t index) {
  const std::string param = absl::StrCat("messages[", index, "].content");
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return std::string();
  if (!content.is_array()) {
    return InvalidParam(param, absl::StrCat("'", param, "' must be a string or a list of parts"));
  }
  std::string text;
  for (const Json& part : content) {
    if (!part.is_object() || part.value("type", Json()) != "text" || !part.contains("text") ||
        !part["text"].is_string()) {
      return InvalidParam(param, absl::StrCat("'", param,
                                              "' parts must be {\"type\": \"text\", \"text\": "
                                              "string}; this model takes text only"));
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

absl::Status ParseMessages(const Json& body, ApiRequest& r) {
  const Json* messages = Field(body, "messages");
  if (!messages) return InvalidParam("messages", "'messages' is required");
  if (!messages->is_array() || messages->empty()) {
    return InvalidParam("messages", "'messages' must be a non-empty list");
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    const std::string where = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return InvalidParam(where, absl::StrCat("'", where, "' must be an object"));
    const Json* role = Field(m, "role");
    if (!role || !role->is_string()) {
      return InvalidParam(where + ".role", absl::StrCat("'", where, ".role' must be a string"));
    }
    const std::string role_name = role->get<std::string>();
    if (role_name != "system" && role_name != "developer" && role_name != "user" &&
        role_name != "assistant" && role_name != "tool") {
      return InvalidParam(where + ".role", absl::StrCat("'", where,
                                                        ".role' must be system, developer, user, "
                                                        "assistant or tool, got '",
                                                        role_name, "'"));
    }
    auto content = MessageContent(m.contains("content") ? m["content"] : Json(), i);
    if (!content.ok()) return content.status();
    // Templates know "system"; "developer" is OpenAI's newer name for it.
    r.messages.push_back(
        {{"role", role_name == "developer" ? "system" : role_name}, {"content", *content}});
  }
  return absl::OkStatus();
}

absl::Status ParsePrompt(const Json& body, ApiRequest& r) {
  const Json* prompt = Field(body, "prompt");
  if (!prompt) return InvalidParam("prompt", "'prompt' is required");
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    r.prompt = (*prompt)[0].get<std::string>();
  } else if (prompt->is_string()) {
    r.prompt = prompt->get<std::string>();
  } else {
    return InvalidParam("prompt", "'prompt' must be a string (or a list of one string)");
  }
  return absl::OkStatus();
}

absl::Status ParseStop(const Json& body, ApiRequest& r) {
  const Json* stop = Field(body, "stop");
  if (!stop) return absl::OkStatus();
  std::vector<const Json*> items;
  if (stop->is_string()) {
    items.push_back(stop);
  } else if (stop->is_array()) {
    if (stop->size() > kMaxStopStrings) {
      return InvalidParam("stop", absl::StrCat("'stop' takes at most ", kMaxStopStrings,
                                               " strings, got ", stop->size()));
    }
    for (const Json& s : *stop) items.push_back(&s);
  } else {
    return InvalidParam("stop", "'stop' must be a string or a list of strings");
  }
  for (const Json* s : items) {
    if (!s->is_string()) return InvalidParam("stop", "'stop' must hold strings only");
    std::string text = s->get<std::string>();
    if (text.size() > kMaxStopStringBytes) {
      return InvalidParam(
          "stop", absl::StrCat("a stop string is longer than ", kMaxStopStringBytes, " bytes"));
    }
    if (!text.empty()) r.stop.push_back(std::move(text));
  }
  return absl::OkStatus();
}

absl::Status ParseSampling(const Json& body, ApiRequest& r) {
  SamplingParams& p = r.sampling;
  p.temperature = 1.0f;
  p.top_p = 1.0f;
  p.top_k = 0;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  if (const Json* v = Field(body, "temperature")) {
    auto x = Number(*v, "temperature", 0, 2);
    if (!x.ok()) return x.status();
    p.temperature = static_cast<float>(*x);
  }
  if (const Json* v = Field(body, "top_p")) {
    auto x = Number(*v, "top_p", 0, 1);
    if (!x.ok()) return x.status();
    // top_p 0 keeps only the most likely token: greedy.
    if (*x == 0) {
      p.temperature = 0;
    } else {
      p.top_p = static_cast<float>(*x);
    }
  }
  for (auto [name, out] : {std::pair{"presence_penalty", &p.presence_penalty},
                           std::pair{"frequency_penalty", &p.frequency_penalty}}) {
    if (const Json* v = Field(body, name)) {
      auto x = Number(*v, name, -2, 2);
      if (!x.ok()) return x.status();
      *out = static_cast<float>(*x);
    }
  }
  if (const Json* v = Field(body, "seed")) {
    auto x = Integer(*v, "seed", std::numeric_limits<int64_t>::min(),
                     std::numeric_limits<int64_t>::max());
    if (!x.ok()) return x.status();
    p.seed = static_cast<uint64_t>(*x);
    r.has_seed = true;
  }
  // Logprobs: a boolean plus top_logprobs (0..20) in chat; an integer 0..5 in completions.
  if (r.endpoint == Endpoint::kChatCompletions) {
    if (const Json* v = Field(body, "logprobs")) {
      auto x = Bool(*v, "logprobs");
      if (!x.ok()) return x.status();
      p.logprobs = *x;
    }
    if (const Json* v = Field(body, "top_logprobs")) {
      auto x = Integer(*v, "top_logprobs", 0, kMaxTopLogprobs);
      if (!x.ok()) return x.status();
      if (!p.logprobs && *x > 0) {
        return InvalidParam("top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
      }
      p.top_logprobs = static_cast<int32_t>(*x);
    }
  } else if (const Json* v = Field(body, "logprobs")) {
    auto x = Integer(*v, "logprobs", 0, kMaxCompletionLogprobs);
    if (!x.ok()) return x.status();
    p.logprobs = true;
    p.top_logprobs = static_cast<int32_t>(*x);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ApiRequest> ParseApiRequest(Endpoint endpoint, std::string_view body,
                                           uint64_t default_seed) {
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError("the request body is not valid JSON");
  }
  if (!j.is_object()) return absl::InvalidArgumentError("the request body must be a JSON object");
  ApiRequest r;
  r.endpoint = endpoint;
  r.sampling.seed = default_seed;
  if (const Json* v = Field(j, "model")) {
    if (!v->is_string()) return InvalidParam("model", "'model' must be a string");
    r.model = v->get<std::string>();
  }
  absl::Status s = endpoint == Endpoint::kChatCompletions ? ParseMessages(j, r) : ParsePrompt(j, r);
  if (!s.ok()) return s;
  // max_completion_tokens is the newer name; either bounds the answer.
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    if (const Json* v = Field(j, name)) {
      auto x = Integer(*v, name, 1, std::numeric_limits<int32_t>::max());
      if (!x.ok()) return x.status();
      r.max_tokens = static_cast<int32_t>(*x);
    }
  }
  if (const Json* v = Field(j, "n")) {
    auto x = Integer(*v, "n", 1, 1);
    if (!x.ok()) return InvalidParam("n", "'n' must be 1: this server gives one choice");
  }
  if (const Json* v = Field(j, "stream")) {
    auto x = Bool(*v, "stream");
    if (!x.ok()) return x.status();
    r.stream = *x;
  }
  if (const Json* v = Field(j, "stream_options")) {
    if (!v->is_object())
      return InvalidParam("stream_options", "'stream_options' must be an object");
    if (const Json* u = Field(*v, "include_usage")) {
      auto x = Bool(*u, "stream_options.include_usage");
      if (!x.ok()) return x.status();
      r.include_usage = *x;
    }
  }
  if (s = ParseStop(j, r); !s.ok()) return s;
  if (s = ParseSampling(j, r); !s.ok()) return s;
  return r;
}

}  // namespace tandem::api
