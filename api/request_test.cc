#include "api/request.h"

#include <gtest/gtest.h>

#include "api/api_error.h"

namespace tandem::api {
namespace {

absl::StatusOr<ApiRequest> Chat(const std::string& body) {
  return ParseApiRequest(Endpoint::kChatCompletions, body, /*default_seed=*/99);
}
absl::StatusOr<ApiRequest> Text(const std::string& body) {
  return ParseApiRequest(Endpoint::kCompletions, body, /*default_seed=*/99);
}

// The status is a 400 naming `param`.
void ExpectBadParam(const absl::StatusOr<ApiRequest>& r, const std::string& param) {
  ASSERT_FALSE(r.ok());
  const ApiError e = ApiErrorFromStatus(r.status());
  EXPECT_EQ(e.http_status, 400) << r.status();
  EXPECT_EQ(e.param, param) << r.status();
  EXPECT_EQ(e.type, "invalid_request_error");
}

TEST(ParseApiRequest, ChatWithEveryField) {
  auto r = Chat(R"({"model": "m", "messages": [{"role": "system", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}],
      "max_tokens": 12, "temperature": 0.5, "top_p": 0.9, "seed": -3, "stop": ["a", "b"],
      "presence_penalty": 0.5, "frequency_penalty": -1, "logprobs": true, "top_logprobs": 3,
      "stream": true, "stream_options": {"include_usage": true}, "n": 1, "user": "x",
      "unknown_field": {"any": "thing"}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "m");
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[1]["content"], "Hi there");
  EXPECT_EQ(*r->max_tokens, 12);
  EXPECT_FLOAT_EQ(r->sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r->sampling.top_p, 0.9f);
  EXPECT_TRUE(r->has_seed);
  EXPECT_EQ(r->sampling.seed, static_cast<uint64_t>(-3));
  EXPECT_EQ(r->stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_FLOAT_EQ(r->sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r->sampling.frequency_penalty, -1.0f);
  EXPECT_TRUE(r->sampling.logprobs);
  EXPECT_EQ(r->sampling.top_logprobs, 3);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
}

TEST(ParseApiRequest, OpenAiDefaults) {
  auto r = Chat(R"({"messages": [{"role": "user", "content": "x"}], "temperature": null})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->max_tokens.has_value());
  EXPECT_FLOAT_EQ(r->sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r->sampling.top_p, 1.0f);
  EXPECT_EQ(r->sampling.top_k, 0);
  EXPECT_FLOAT_EQ(r->sampling.min_p, 0.0f);
  EXPECT_FALSE(r->has_seed);
  EXPECT_EQ(r->sampling.seed, 99u);
  EXPECT_FALSE(r->stream);
  EXPECT_TRUE(r->stop.empty());
}

TEST(ParseApiRequest, CompletionsPromptStopAndLogprobs) {
  auto r = Text(R"({"prompt": ["Once"], "stop": "\n", "logprobs": 2,
                    "max_completion_tokens": 5, "top_p": 0})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->prompt, "Once");
  EXPECT_EQ(r->stop, (std::vector<std::string>{"\n"}));
  EXPECT_TRUE(r->sampling.logprobs);
  EXPECT_EQ(r->sampling.top_logprobs, 2);
  EXPECT_EQ(*r->max_tokens, 5);
  EXPECT_EQ(r->sampling.temperature, 0.0f);  // top_p 0 is greedy
}

TEST(ParseApiRequest, MalformedBodies) {
  for (const char* body : {"", "{", "[1, 2]", "\"text\"", "{\"messages\": [}"}) {
    auto r = Chat(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(ApiErrorFromStatus(r.status()).http_status, 400) << body;
  }
}

TEST(ParseApiRequest, WrongTypesAndRangesNameTheField) {
  const std::string m = R"("messages": [{"role": "user", "content": "x"}])";
  ExpectBadParam(Chat("{}"), "messages");
  ExpectBadParam(Chat(R"({"messages": []})"), "messages");
  ExpectBadParam(Chat(R"({"messages": [{"role": "wizard", "content": "x"}]})"), "messages[0].role");
  ExpectBadParam(Chat(R"({"messages": [{"role": "user", "content": 5}]})"), "messages[0].content");
  ExpectBadParam(Chat(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})"),
                 "messages[0].content");
  ExpectBadParam(Chat("{" + m + R"(, "max_tokens": "12"})"), "max_tokens");
  ExpectBadParam(Chat("{" + m + R"(, "max_tokens": 0})"), "max_tokens");
  ExpectBadParam(Chat("{" + m + R"(, "max_tokens": 1.5})"), "max_tokens");
  ExpectBadParam(Chat("{" + m + R"(, "max_completion_tokens": 99999999999})"),
                 "max_completion_tokens");
  ExpectBadParam(Chat("{" + m + R"(, "temperature": "hot"})"), "temperature");
  ExpectBadParam(Chat("{" + m + R"(, "temperature": 2.5})"), "temperature");
  ExpectBadParam(Chat("{" + m + R"(, "top_p": 1.5})"), "top_p");
  ExpectBadParam(Chat("{" + m + R"(, "seed": "7"})"), "seed");
  ExpectBadParam(Chat("{" + m + R"(, "seed": 18446744073709551615})"), "seed");
  ExpectBadParam(Chat("{" + m + R"(, "stop": 3})"), "stop");
  ExpectBadParam(Chat("{" + m + R"(, "stop": ["a", 3]})"), "stop");
  ExpectBadParam(Chat("{" + m + R"(, "n": 2})"), "n");
  ExpectBadParam(Chat("{" + m + R"(, "stream": "yes"})"), "stream");
  ExpectBadParam(Chat("{" + m + R"(, "stream_options": []})"), "stream_options");
  ExpectBadParam(Chat("{" + m + R"(, "presence_penalty": 3})"), "presence_penalty");
  ExpectBadParam(Chat("{" + m + R"(, "frequency_penalty": "x"})"), "frequency_penalty");
  ExpectBadParam(Chat("{" + m + R"(, "logprobs": 2})"), "logprobs");
  ExpectBadParam(Chat("{" + m + R"(, "top_logprobs": 3})"), "top_logprobs");
  ExpectBadParam(Chat("{" + m + R"(, "logprobs": true, "top_logprobs": 21})"), "top_logprobs");
  ExpectBadParam(Chat("{" + m + R"(, "model": 3})"), "model");
  ExpectBadParam(Text("{}"), "prompt");
  ExpectBadParam(Text(R"({"prompt": ["a", "b"]})"), "prompt");
  ExpectBadParam(Text(R"({"prompt": [1, 2]})"), "prompt");
  ExpectBadParam(Text(R"({"prompt": "a", "logprobs": 6})"), "logprobs");
}

TEST(ParseApiRequest, StopListIsBounded) {
  std::string many = "[";
  for (size_t i = 0; i <= kMaxStopStrings; ++i) many += std::string(i ? "," : "") + "\"s\"";
  many += "]";
  ExpectBadParam(Text(R"({"prompt": "a", "stop": )" + many + "}"), "stop");
  ExpectBadParam(
      Text(R"({"prompt": "a", "stop": ")" + std::string(kMaxStopStringBytes + 1, 'x') + "\"}"),
      "stop");
}

TEST(ApiErrorFromStatus, MapsCodesToHttp) {
  EXPECT_EQ(ApiErrorFromStatus(absl::OutOfRangeError("long")).http_status, 400);
  EXPECT_EQ(ApiErrorFromStatus(absl::OutOfRangeError("long")).code, "context_length_exceeded");
  EXPECT_EQ(ApiErrorFromStatus(absl::UnauthenticatedError("k")).http_status, 401);
  EXPECT_EQ(ApiErrorFromStatus(absl::ResourceExhaustedError("full")).http_status, 429);
  EXPECT_EQ(ApiErrorFromStatus(absl::UnavailableError("wait")).http_status, 503);
  EXPECT_EQ(ApiErrorFromStatus(absl::InternalError("bug")).http_status, 500);
  const std::string body = ApiErrorBody(ApiErrorFromStatus(InvalidParam("top_p", "bad top_p")));
  const auto j = nlohmann::json::parse(body);
  EXPECT_EQ(j["error"]["message"], "bad top_p");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "top_p");
  EXPECT_TRUE(j["error"]["code"].is_null());
}

}  // namespace
}  // namespace tandem::api
