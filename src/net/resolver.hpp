// The I/O shell's asynchronous name resolver: host names of ICE servers (stun:/turn: URLs) resolved to A and
// AAAA records with c-ares, without blocking and without a thread. c-ares' sockets are added to the owner's
// epoll set (net::Poller) as c-ares opens them, its retransmission timers surface as `nextDeadline()`, and the
// owner calls `process()` from its poll loop; answers are queued for `poll()`. c-ares reads /etc/hosts and
// /etc/resolv.conf itself (what `ip netns exec` replaces with /etc/netns/<ns>/... for a namespace).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/address.hpp"
#include "common/result.hpp"
#include "common/time.hpp"
#include "net/udp.hpp"

struct ares_addrinfo;

namespace rtcpeer::net {

/// True for what needs no resolver: an IPv4/IPv6 literal (brackets allowed). resolve() handles those and
/// "localhost" synchronously.
bool isAddressLiteral(std::string_view host) noexcept;

class Resolver {
 public:
  struct Answer {
    std::uint64_t id = 0;
    std::string host;
    /// Every address found, IPv4 first then IPv6 (each in the order the resolver returned), with the port given.
    std::vector<SocketAddress> addresses;
    std::string error;  ///< why nothing was found (empty when `addresses` is not)
  };

  /// A resolver whose sockets are watched by `poller`. Fails if c-ares cannot initialize (e.g. unreadable
  /// resolv.conf), with its reason.
  static Result<std::unique_ptr<Resolver>> create(std::shared_ptr<Poller> poller);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  /// Starts resolving `host` (A and AAAA); the answer comes out of poll() with the returned id, never from
  /// inside this call. Literals are answered at the next process() without a query.
  std::uint64_t resolve(std::string_view host, std::uint16_t port);
  /// Reads whatever arrived on the resolver's sockets and fires its timers (cheap when idle).
  void process();
  std::optional<Answer> poll();
  /// When process() must run next even if no socket became readable; kNever with no query outstanding.
  [[nodiscard]] Timestamp nextDeadline() const;
  [[nodiscard]] std::size_t pending() const noexcept { return outstanding_; }

 private:
  struct Query;
  explicit Resolver(std::shared_ptr<Poller> poller) : poller_(std::move(poller)) {}
  static void onSocketState(void* self, int fd, int readable, int writable);
  static void onAnswer(void* query, int status, int timeouts, ::ares_addrinfo* result);

  std::shared_ptr<Poller> poller_;
  void* channel_ = nullptr;  // ares_channel (kept opaque so that this header does not pull in ares.h)
  struct Watched {
    int fd;
    bool write;
  };
  std::vector<Watched> sockets_;
  std::deque<Answer> answers_;
  std::uint64_t nextId_ = 1;
  std::size_t outstanding_ = 0;
};

}  // namespace rtcpeer::net
