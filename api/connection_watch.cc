#include "api/connection_watch.h"

#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>
#include <string>

namespace tandem::api {
namespace {

// "address port" of one end of a socket, numeric, as cpp-httplib writes Request's fields.
bool Endpoint(int fd, bool peer, std::string* address, int* port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  const int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                      : ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (rc != 0) return false;
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
  if (::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof host, service,
                    sizeof service, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return false;
  }
  *address = host;
  *port = std::atoi(service);
  return true;
}

bool IsConnection(int fd, const httplib::Request& r) {
  std::string address;
  int port = -1;
  if (r.local_port >= 0 && (!Endpoint(fd, /*peer=*/false, &address, &port) ||
                            port != r.local_port || address != r.local_addr)) {
    return false;
  }
  return Endpoint(fd, /*peer=*/true, &address, &port) && port == r.remote_port &&
         address == r.remote_addr;
}

// A worker thread serves one connection at a time, often many requests on it: the socket
// found last is checked first.
thread_local int last_fd = -1;

int FindSocket(const httplib::Request& r) {
  if (last_fd >= 0 && IsConnection(last_fd, r)) return last_fd;
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (const dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    if (IsConnection(static_cast<int>(fd), r)) {
      found = static_cast<int>(fd);
      break;
    }
  }
  ::closedir(dir);
  last_fd = found;
  return found;
}

}  // namespace

ConnectionWatch::ConnectionWatch(const httplib::Request& request) : fd_(FindSocket(request)) {}

bool ConnectionWatch::Closed() const {
  if (fd_ < 0) return false;
  pollfd p{fd_, POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

}  // namespace tandem::api
