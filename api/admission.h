// The HTTP layer's admission limit: at most `limit` generations in flight; one more is
// refused at once (429 with Retry-After) rather than queued behind the plan's reservation.
#pragma once

#include <atomic>
#include <memory>

namespace tandem::api {

class Admission {
 public:
  explicit Admission(int limit) : limit_(limit) {}

  // Holds one place until destroyed.
  class Ticket {
   public:
    explicit Ticket(Admission* a) : a_(a) {}
    ~Ticket() { a_->in_flight_.fetch_sub(1); }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    Admission* a_;
  };

  // A ticket, or nullptr when `limit` are in flight.
  std::unique_ptr<Ticket> TryAdmit() {
    if (in_flight_.fetch_add(1) >= limit_) {
      in_flight_.fetch_sub(1);
      return nullptr;
    }
    return std::make_unique<Ticket>(this);
  }
  int in_flight() const { return in_flight_.load(); }
  int limit() const { return limit_; }

 private:
  const int limit_;
  std::atomic<int> in_flight_{0};
};

}  // namespace tandem::api
