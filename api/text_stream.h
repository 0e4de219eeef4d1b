// Turns a stream of token pieces into the text a client may see: stop strings are cut
// (never emitted, and the answer ends at the first one), and text is released only up to
// a complete UTF-8 character and past any tail that could still begin a stop string.
#pragma once

#include <string>
#include <vector>

namespace tandem::api {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop_strings);

  // Adds a piece; returns the text now safe to emit (possibly empty).
  std::string Feed(const std::string& piece);
  // True once a stop string was seen: nothing more is emitted.
  bool stopped() const { return stopped_; }
  // At the end of generation: what was held back (an incomplete UTF-8 tail becomes U+FFFD).
  std::string Finish();

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // held back
  bool stopped_ = false;
};

// The length of the longest prefix of `text` that ends on a UTF-8 character boundary
// (an incomplete multi-byte sequence at the end is left out).
size_t CompleteUtf8Prefix(const std::string& text);

}  // namespace tandem::api
