// tandem-linkem: delay, jitter and loss on one host's link, for kernels without tc netem.
//
// deploy/netns.sh runs one inside each emulated host's network namespace, with iptables
// sending the packets of the host's link to two NFQUEUE queues (one per direction). Each
// packet is held here (only its id: the kernel keeps the bytes) and accepted once its delay
// has passed, or dropped with the loss probability, like netem on both ends of the link.
// Packets leave in the order they came (no reordering), each delayed by a uniform
// random time in [delay - jitter, delay + jitter].
#include <arpa/inet.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int queue = 0;         // this and queue + 1
  double delay_ms = 0;   // per direction
  double jitter_ms = 0;  // uniform ± around delay_ms
  double loss = 0;       // probability in [0, 1]
  unsigned seed = 1;
};

// One direction of the link: the ids of the packets held, in arrival order.
struct Direction {
  struct Held {
    uint32_t id;
    Clock::time_point release;
  };
  nfq_q_handle* handle = nullptr;
  std::deque<Held> held;
  Clock::time_point last_release{};
  std::mt19937_64 rng;
  const Options* options = nullptr;
  uint64_t passed = 0, dropped = 0;
};

// The kernel queues at most this many packets per direction (more are dropped there, as a
// full link would); so `held` is bounded by it too.
constexpr uint32_t kMaxHeld = 8192;

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

int OnPacket(nfq_q_handle* qh, nfgenmsg*, nfq_data* nfad, void* data) {
  auto* d = static_cast<Direction*>(data);
  const nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfad);
  if (ph == nullptr) return 0;
  const uint32_t id = ntohl(ph->packet_id);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  if (d->options->loss > 0 && unit(d->rng) < d->options->loss) {
    ++d->dropped;
    return nfq_set_verdict(qh, id, NF_DROP, 0, nullptr);
  }
  if (d->held.size() >= kMaxHeld) {  // cannot happen with the kernel's own bound; be safe
    ++d->dropped;
    return nfq_set_verdict(qh, id, NF_DROP, 0, nullptr);
  }
  double ms = d->options->delay_ms;
  if (d->options->jitter_ms > 0) {
    ms += (2 * unit(d->rng) - 1) * d->options->jitter_ms;
  }
  if (ms < 0) ms = 0;
  auto release = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double, std::milli>(ms));
  if (release < d->last_release) release = d->last_release;  // keep the order
  d->last_release = release;
  d->held.push_back({id, release});
  return 0;
}

bool ParseDouble(const char* s, double lo, double hi, double* out) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) return false;
  *out = v;
  return true;
}

int Usage(const char* why) {
  std::fprintf(stderr,
               "tandem-linkem: %s\n"
               "usage: tandem-linkem --queue N --delay-ms D [--jitter-ms J] [--loss P] "
               "[--seed S]\n"
               "  holds packets of NFQUEUE queues N (one direction) and N+1 (the other)\n"
               "  D, J: 0..10000 ms; P: loss probability 0..1\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return Usage(("missing the value of " + a).c_str());
    const char* v = argv[++i];
    double x;
    if (a == "--queue" && ParseDouble(v, 0, 65534, &x) && x == static_cast<int>(x)) {
      o.queue = static_cast<int>(x);
    } else if (a == "--delay-ms" && ParseDouble(v, 0, 10000, &x)) {
      o.delay_ms = x;
    } else if (a == "--jitter-ms" && ParseDouble(v, 0, 10000, &x)) {
      o.jitter_ms = x;
    } else if (a == "--loss" && ParseDouble(v, 0, 1, &x)) {
      o.loss = x;
    } else if (a == "--seed" && ParseDouble(v, 0, 4294967295.0, &x)) {
      o.seed = static_cast<unsigned>(x);
    } else {
      return Usage(("bad option or value: " + a + " " + v).c_str());
    }
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  nfq_handle* h = nfq_open();
  if (h == nullptr) {
    std::perror("tandem-linkem: nfq_open");
    return 1;
  }
  Direction dirs[2];
  for (int k = 0; k < 2; ++k) {
    dirs[k].options = &o;
    dirs[k].rng.seed(o.seed * 2 + k);
    dirs[k].handle = nfq_create_queue(h, o.queue + k, &OnPacket, &dirs[k]);
    if (dirs[k].handle == nullptr) {
      std::fprintf(stderr, "tandem-linkem: cannot bind NFQUEUE %d: %s\n", o.queue + k,
                   std::strerror(errno));
      nfq_close(h);
      return 1;
    }
    nfq_set_mode(dirs[k].handle, NFQNL_COPY_META, 0);
    nfq_set_queue_maxlen(dirs[k].handle, kMaxHeld);
  }
  // A link is not late because the machine is busy: real-time priority when allowed (a
  // loaded machine otherwise wakes this loop up to tens of milliseconds late).
  sched_param sp{};
  sp.sched_priority = 10;
  if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
    std::fprintf(stderr, "tandem-linkem: no real-time priority (%s); delays may run late\n",
                 std::strerror(errno));
  }
  const int fd = nfq_fd(h);
  int rcvbuf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  std::fprintf(stderr, "tandem-linkem: queues %d,%d delay %.1f ms ± %.1f ms, loss %.4f\n", o.queue,
               o.queue + 1, o.delay_ms, o.jitter_ms, o.loss);

  alignas(8) static char buf[1 << 16];
  while (!g_stop) {
    // Release what is due, then sleep until the next release or a packet.
    int timeout_ms = 100;
    const auto now = Clock::now();
    for (auto& d : dirs) {
      while (!d.held.empty() && d.held.front().release <= now) {
        nfq_set_verdict(d.handle, d.held.front().id, NF_ACCEPT, 0, nullptr);
        ++d.passed;
        d.held.pop_front();
      }
      if (!d.held.empty()) {
        const auto wait =
            std::chrono::ceil<std::chrono::milliseconds>(d.held.front().release - now).count();
        if (wait < timeout_ms) timeout_ms = static_cast<int>(wait);
      }
    }
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno != EINTR) {
      std::perror("tandem-linkem: poll");
      break;
    }
    if (r > 0) {
      for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
          // ENOBUFS: the kernel dropped notifications (they stay queued there and are
          // lost as on a full link); keep going.
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ENOBUFS) break;
          std::perror("tandem-linkem: recv");
          g_stop = 1;
          break;
        }
        nfq_handle_packet(h, buf, static_cast<int>(n));
      }
    }
  }
  for (auto& d : dirs) {
    // Let what is held go, so a stopped emulator leaves no packet behind.
    while (!d.held.empty()) {
      nfq_set_verdict(d.handle, d.held.front().id, NF_ACCEPT, 0, nullptr);
      d.held.pop_front();
    }
    nfq_destroy_queue(d.handle);
  }
  nfq_close(h);
  std::fprintf(stderr, "tandem-linkem: passed %llu/%llu, dropped %llu/%llu\n",
               static_cast<unsigned long long>(dirs[0].passed),
               static_cast<unsigned long long>(dirs[1].passed),
               static_cast<unsigned long long>(dirs[0].dropped),
               static_cast<unsigned long long>(dirs[1].dropped));
  return 0;
}
