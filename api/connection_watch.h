// Whether the client of an HTTP request is still there, for a handler that blocks while
// it works (a non-streamed generation): a client that went away must not keep its session
// and KV cache until the answer is done. cpp-httplib 0.11 gives a handler no socket, so the
// watch finds the connection's socket by its two addresses, once per connection.
#pragma once

#include <httplib.h>

namespace tandem::api {

class ConnectionWatch {
 public:
  // Must be made on the thread that serves `request` (the handler's).
  explicit ConnectionWatch(const httplib::Request& request);

  // True once the peer closed or reset the connection. False when the socket was not
  // found (the watch then never ends a request).
  bool Closed() const;
  bool found() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace tandem::api
