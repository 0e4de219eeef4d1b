// JSON text and server-sent events as the OpenAI API streams them: one `data: <json>`
// event per chunk, and `data: [DONE]` at the end; and the reading end, for clients.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace tandem::api {

// Compact JSON; invalid UTF-8 in strings becomes U+FFFD rather than an exception.
std::string DumpJson(const nlohmann::json& value);
// "data: <json>\n\n".
std::string SseEvent(const nlohmann::json& value);
// The event that ends every stream.
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// Splits a received byte stream into events and hands on each event's data (its `data:`
// lines joined by newlines); comments and other fields are skipped. Lines may end in LF
// or CRLF and arrive cut anywhere.
class SseReader {
 public:
  static constexpr size_t kMaxEventBytes = 4 << 20;
  // False (and nothing more is read) once one event grows past kMaxEventBytes: the peer
  // is not sending server-sent events.
  bool Feed(std::string_view bytes, const std::function<void(const std::string&)>& on_data);

 private:
  std::string line_;  // the incomplete line
  std::string data_;  // the event's data so far
  bool has_data_ = false;
  bool failed_ = false;
};

}  // namespace tandem::api
