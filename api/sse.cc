#include "api/sse.h"

namespace tandem::api {

std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

std::string SseEvent(const nlohmann::json& value) {
  std::string out = "data: ";
  out += DumpJson(value);
  out += "\n\n";
  return out;
}

bool SseReader::Feed(std::string_view bytes,
                     const std::function<void(const std::string&)>& on_data) {
  for (char c : bytes) {
    if (failed_) return false;
    if (c != '\n') {
      line_ += c;
      if (line_.size() + data_.size() > kMaxEventBytes) failed_ = true;
      continue;
    }
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_.empty()) {  // a blank line ends the event
      if (has_data_) on_data(data_);
      data_.clear();
      has_data_ = false;
    } else if (line_.rfind("data:", 0) == 0) {
      std::string_view value = std::string_view(line_).substr(5);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (has_data_) data_ += '\n';
      data_.append(value);
      has_data_ = true;
    }
    line_.clear();
  }
  return !failed_;
}

}  // namespace tandem::api
