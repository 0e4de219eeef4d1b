// JSON text and server-sent events as the OpenAI API streams them: one `data: <json>`
// event per chunk, and `data: [DONE]` at the end.
#pragma once

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

}  // namespace tandem::api
