// Renders every record of ../shared/chat-templates (47 real templates x 5 conversations x
// add_generation_prompt, plus the tool-definition case T1) and compares with what Python
// Jinja2 produced under transformers' settings.
#include "model/chat_template.h"

#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace tandem {
namespace {

const std::string kDir = std::string(TANDEM_SHARED_DIR) + "/chat-templates";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "missing test data: " << path;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The date the expected outputs were rendered with (README: 26 Jul 2024, 00:00:00).
std::tm FixedDate() {
  std::tm date{};
  date.tm_year = 2024 - 1900;
  date.tm_mon = 6;
  date.tm_mday = 26;
  date.tm_wday = 5;  // a Friday
  date.tm_yday = 207;
  return date;
}

// Records whose rendering is known to differ, with the reason. Keep empty when possible.
const std::set<std::string> kKnownFailures = {};

struct Outcome {
  int passed = 0;
  int total = 0;
  std::vector<std::string> failures;
};

// Checks one record; returns "" on success, else what went wrong.
std::string CheckRecord(const nlohmann::ordered_json& record,
                        std::map<std::string, ChatTemplate>* cache) {
  const std::string name = record["template"];
  const std::string bos = record["bos_token"];
  const std::string eos = record["eos_token"];
  const std::string key = name + "|" + bos + "|" + eos;
  auto it = cache->find(key);
  if (it == cache->end()) {
    auto parsed = ChatTemplate::Parse(ReadFile(kDir + "/" + name + ".jinja"), bos, eos);
    if (!parsed.ok()) return absl::StrCat("parse failed: ", parsed.status().ToString());
    jinja::RenderOptions options;
    options.clock = FixedDate;
    parsed->set_render_options(options);
    it = cache->emplace(key, std::move(*parsed)).first;
  }
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  if (record.contains("tools")) extra["tools"] = record["tools"];
  auto rendered = it->second.Apply(record["messages"], record["add_generation_prompt"], extra);
  if (!record["error"].is_null()) {
    const std::string type = record["error_type"];
    const std::string error = record["error"];
    if (rendered.ok()) return absl::StrCat("expected ", type, " '", error, "', got output");
    const std::string message(rendered.status().message());
    if (type == "jinja2.exceptions.TemplateError") {
      // raise_exception: the template's own message, verbatim.
      if (message != error)
        return absl::StrCat("expected error '", error, "', got '", message, "'");
    } else {
      // Python runtime errors: the kind must match, the wording is Python's.
      const std::string kind = type.substr(type.rfind('.') + 1);
      if (!absl::StartsWith(message, kind + ":")) {
        return absl::StrCat("expected a ", kind, ", got '", message, "'");
      }
    }
    return "";
  }
  if (!rendered.ok()) return absl::StrCat("render failed: ", rendered.status().ToString());
  const std::string expected = record["output"];
  if (*rendered == expected) return "";
  size_t at = 0;
  while (at < expected.size() && at < rendered->size() && expected[at] == (*rendered)[at]) ++at;
  const size_t from = at > 40 ? at - 40 : 0;
  return absl::StrCat("output differs at byte ", at,
                      "\n  expected: ", nlohmann::json(expected.substr(from, 120)).dump(),
                      "\n  actual:   ", nlohmann::json(rendered->substr(from, 120)).dump());
}

Outcome RunAll(const std::string& file) {
  std::ifstream in(kDir + "/" + file);
  EXPECT_TRUE(in) << "missing test data: " << kDir << "/" << file;
  Outcome outcome;
  if (!in) return outcome;
  const nlohmann::ordered_json records = nlohmann::ordered_json::parse(in);
  std::map<std::string, ChatTemplate> cache;
  for (const auto& record : records) {
    ++outcome.total;
    const std::string id =
        absl::StrCat(record["template"].get<std::string>(), "/", record["case"].get<std::string>(),
                     record["add_generation_prompt"].get<bool>() ? "/agp" : "");
    const std::string problem = CheckRecord(record, &cache);
    if (problem.empty()) {
      ++outcome.passed;
    } else if (kKnownFailures.count(id) == 0) {
      outcome.failures.push_back(id + ": " + problem);
    }
  }
  return outcome;
}

TEST(ChatTemplateTest, AllExpectedRenderings) {
  const Outcome outcome = RunAll("expected.json");
  std::cout << "expected.json: " << outcome.passed << "/" << outcome.total << " pass\n";
  EXPECT_EQ(outcome.total, 470);
  for (const std::string& failure : outcome.failures) ADD_FAILURE() << failure;
  EXPECT_EQ(outcome.passed + static_cast<int>(kKnownFailures.size()), outcome.total);
}

TEST(ChatTemplateTest, AllToolRenderings) {
  const Outcome outcome = RunAll("expected_tools.json");
  std::cout << "expected_tools.json: " << outcome.passed << "/" << outcome.total << " pass\n";
  EXPECT_EQ(outcome.total, 32);
  for (const std::string& failure : outcome.failures) ADD_FAILURE() << failure;
  EXPECT_TRUE(outcome.failures.empty());
}

TEST(ChatTemplateTest, DefaultTemplateIsChatMl) {
  auto chat = ChatTemplate::Parse(std::string(DefaultChatTemplateSource()), "<s>", "</s>");
  ASSERT_TRUE(chat.ok()) << chat.status();
  const nlohmann::ordered_json messages = {{{"role", "system"}, {"content", "Be brief."}},
                                           {{"role", "user"}, {"content", "Hi"}}};
  auto text = chat->Apply(messages, true);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(chat->end_of_turn().front(), "<|im_end|>");
}

TEST(ChatTemplateTest, EndOfTurnFromRealTemplates) {
  const std::pair<const char*, const char*> cases[] = {
      {"meta-llama-Llama-3.1-8B-Instruct", "<|eot_id|>"},
      {"google-gemma-2-2b-it", "<end_of_turn>"},
      {"Qwen-Qwen2.5-7B-Instruct", "<|im_end|>"},
      {"microsoft-Phi-3.5-mini-instruct", "<|end|>"},
      {"CohereForAI-c4ai-command-r-plus-default", "<|END_OF_TURN_TOKEN|>"},
      // Templates that end a turn by starting the next one.
      {"THUDM-glm-4", "<|user|>"},
      {"MiniCPM-3B-OpenHermes-2.5-v2", "<用户>"},
      // Special tokens written back to back: only the first one.
      {"CohereForAI-c4ai-command-r7b-12-2024-tool_use", "<|END_RESPONSE|>"},
  };
  for (const auto& [name, marker] : cases) {
    auto chat = ChatTemplate::Parse(ReadFile(kDir + "/" + name + ".jinja"), "<s>", "</s>");
    ASSERT_TRUE(chat.ok()) << name << ": " << chat.status();
    ASSERT_FALSE(chat->end_of_turn().empty()) << name;
    EXPECT_EQ(chat->end_of_turn().front(), marker) << name;
    EXPECT_NE(std::find(chat->end_of_turn().begin(), chat->end_of_turn().end(), "</s>"),
              chat->end_of_turn().end())
        << name << ": the EOS text always stops generation";
  }
}

TEST(ChatTemplateTest, SyntaxErrorNamesLineAndColumn) {
  auto chat = ChatTemplate::Parse("Hello\n{% if x %}\n{{ y + }}\n{% endif %}", "", "");
  ASSERT_FALSE(chat.ok());
  EXPECT_EQ(chat.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(chat.status().message(), "line 3")) << chat.status();
}

TEST(ChatTemplateTest, RaiseExceptionIsInvalidArgumentWithMessage) {
  auto chat = ChatTemplate::Parse(
      "{% if messages[0]['role'] == 'system' %}{{ raise_exception('No system role') }}{% endif %}",
      "", "");
  ASSERT_TRUE(chat.ok()) << chat.status();
  auto text = chat->Apply({{{"role", "system"}, {"content", "x"}}}, false);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(text.status().message(), "No system role");
}

}  // namespace
}  // namespace tandem
