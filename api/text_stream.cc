#include "api/text_stream.h"

#include <algorithm>

namespace tandem::api {

size_t CompleteUtf8Prefix(const std::string& text) {
  // Walk back over at most 3 continuation bytes to the last lead byte.
  const size_t n = text.size();
  size_t i = n;
  int continuation = 0;
  while (i > 0 && continuation < 4) {
    const auto c = static_cast<unsigned char>(text[i - 1]);
    if ((c & 0xC0) != 0x80) break;
    --i;
    ++continuation;
  }
  if (i == 0) return n;  // only continuation bytes: nothing to wait for
  const auto lead = static_cast<unsigned char>(text[i - 1]);
  int need = 0;
  if ((lead & 0x80) == 0) {
    need = 0;
  } else if ((lead & 0xE0) == 0xC0) {
    need = 1;
  } else if ((lead & 0xF0) == 0xE0) {
    need = 2;
  } else if ((lead & 0xF8) == 0xF0) {
    need = 3;
  } else {
    return n;  // not a lead byte: invalid, nothing to wait for
  }
  return continuation < need ? i - 1 : n;
}

TextStream::TextStream(std::vector<std::string> stop_strings) : stops_(std::move(stop_strings)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

std::string TextStream::Feed(const std::string& piece) {
  if (stopped_) return "";
  pending_ += piece;
  // The earliest stop string ends the text there.
  size_t cut = std::string::npos;
  for (const std::string& s : stops_) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    for (size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len) {
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  const size_t release = CompleteUtf8Prefix(pending_.substr(0, pending_.size() - hold));
  std::string out = pending_.substr(0, release);
  pending_.erase(0, release);
  return out;
}

std::string TextStream::Finish() {
  if (stopped_) return "";
  std::string out = std::move(pending_);
  pending_.clear();
  const size_t complete = CompleteUtf8Prefix(out);
  if (complete < out.size()) {
    out.resize(complete);
    out += "\xEF\xBF\xBD";  // U+FFFD for a character the model never finished
  }
  return out;
}

}  // namespace tandem::api
