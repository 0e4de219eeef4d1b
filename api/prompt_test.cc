// Prompt preparation and response encoding on a real model's tokenizer (stories260K, which
// has no chat template: the ChatML default applies).
#include "api/prompt.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "api/api_error.h"
#include "api/responses.h"
#include "api/sse.h"

namespace tandem::api {
namespace {

class PromptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = std::string(TANDEM_SHARED_DIR) + "/models/stories260K-f32.gguf";
    auto file = GgufFile::Open(path);
    ASSERT_TRUE(file.ok()) << path << ": " << file.status();  // never skipped
    file_ = std::move(*file);
    auto tokenizer = Tokenizer::FromGguf(*file_);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer);
    auto chat = ChatTemplate::FromGguf(*file_, tokenizer_->vocab());
    ASSERT_TRUE(chat.ok()) << chat.status();
    chat_ = std::make_unique<ChatTemplate>(std::move(*chat));
  }
  ApiRequest Parse(Endpoint e, const std::string& body) {
    auto r = ParseApiRequest(e, body, 1);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : ApiRequest{};
  }

  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ChatTemplate> chat_;
};

TEST_F(PromptTest, ChatRendersTheTemplateAndStopsAtEndOfTurn) {
  const ApiRequest r = Parse(Endpoint::kChatCompletions,
                             R"({"messages": [{"role": "user", "content": "Hi"}], "stop": "x"})");
  auto p = PrepareGeneration(r, *chat_, *tokenizer_, 128);
  ASSERT_TRUE(p.ok()) << p.status();
  const std::string text = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
  EXPECT_EQ(p->request.prompt_ids, tokenizer_->Encode(text, true, true));
  // One BOS, added by the tokenizer.
  EXPECT_EQ(
      std::count(p->request.prompt_ids.begin(), p->request.prompt_ids.end(), tokenizer_->bos()), 1);
  // <|im_end|> is several tokens in this vocabulary: a stop string; EOS is a stop token.
  EXPECT_NE(std::find(p->stop_strings.begin(), p->stop_strings.end(), "<|im_end|>"),
            p->stop_strings.end());
  EXPECT_NE(std::find(p->stop_strings.begin(), p->stop_strings.end(), "x"), p->stop_strings.end());
  EXPECT_NE(std::find(p->request.stop_ids.begin(), p->request.stop_ids.end(), tokenizer_->eos()),
            p->request.stop_ids.end());
  EXPECT_EQ(p->request.n_predict, 128 - static_cast<int32_t>(p->request.prompt_ids.size()));
  EXPECT_TRUE(p->request.stop_at_eos);
}

TEST_F(PromptTest, CompletionsTokenizeAsGenerateDoes) {
  const ApiRequest r =
      Parse(Endpoint::kCompletions, R"({"prompt": "Once upon a time", "max_tokens": 7})");
  auto p = PrepareGeneration(r, *chat_, *tokenizer_, 128);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->request.prompt_ids, tokenizer_->Encode("Once upon a time", true, true));
  EXPECT_EQ(p->request.n_predict, 7);
  EXPECT_TRUE(p->stop_strings.empty());
}

TEST_F(PromptTest, PromptsPastTheContextAre400WithTheField) {
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "Once upon a time. ";
  auto p = PrepareGeneration(Parse(Endpoint::kCompletions, R"({"prompt": ")" + long_prompt + "\"}"),
                             *chat_, *tokenizer_, 128);
  ASSERT_FALSE(p.ok());
  ApiError e = ApiErrorFromStatus(p.status());
  EXPECT_EQ(e.http_status, 400);
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_EQ(e.param, "prompt");
  p = PrepareGeneration(Parse(Endpoint::kCompletions, R"({"prompt": "Hi", "max_tokens": 500})"),
                        *chat_, *tokenizer_, 128);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(ApiErrorFromStatus(p.status()).param, "max_tokens");
}

TEST_F(PromptTest, ChunksAndWholeAnswersHaveTheOpenAiShape) {
  ResponseEncoder chat(Endpoint::kChatCompletions, "chatcmpl-1", 7, "m", *tokenizer_, true);
  const TokenId t = tokenizer_->Encode("cat", false, false).back();
  Delta d;
  d.text = "cat";
  d.tokens.push_back({t, -0.5f, {{t, -0.5f}}});
  nlohmann::json c = chat.Chunk(d, /*include_usage=*/true);
  EXPECT_EQ(c["object"], "chat.completion.chunk");
  EXPECT_EQ(c["choices"][0]["delta"]["content"], "cat");
  EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(c.contains("usage") && c["usage"].is_null());
  EXPECT_EQ(c["choices"][0]["logprobs"]["content"][0]["logprob"], -0.5f);
  EXPECT_EQ(c["choices"][0]["logprobs"]["content"][0]["top_logprobs"].size(), 1u);
  EXPECT_EQ(chat.RoleChunk()["choices"][0]["delta"]["role"], "assistant");
  nlohmann::json u = chat.UsageChunk(3, 4);
  EXPECT_TRUE(u["choices"].empty());
  EXPECT_EQ(u["usage"]["total_tokens"], 7);

  ResponseEncoder text(Endpoint::kCompletions, "cmpl-1", 7, "m", *tokenizer_, false);
  nlohmann::json w = text.Whole("abc", {}, "length", 2, 3);
  EXPECT_EQ(w["object"], "text_completion");
  EXPECT_EQ(w["choices"][0]["text"], "abc");
  EXPECT_EQ(w["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(w["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(w["usage"]["completion_tokens"], 3);
  // One SSE event per chunk.
  const std::string event = SseEvent(w);
  EXPECT_EQ(nlohmann::json::parse(event.substr(6)), w);
}

}  // namespace
}  // namespace tandem::api
