// The I/O shell: the only code in rtcpeer that touches sockets or the clock. Non-blocking UDP sockets bound to
// explicit local addresses, batched receive/send (recvmmsg/sendmmsg), interface enumeration (getifaddrs), a
// steady clock producing core Timestamps, and a poll(2) wait on the cores' next deadline.
#pragma once

#include <memory>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/address.hpp"
#include "common/bytes.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

namespace rtcpeer::net {

/// The current time from std::chrono::steady_clock, as a core Timestamp.
Timestamp now() noexcept;

struct Interface {
  std::string name;
  SocketAddress address;  // port 0
  bool loopback = false;
};

/// Addresses of every interface that is up (IFF_UP and IFF_RUNNING). IPv6 link-local addresses are skipped
/// (they need a scope id and are useless for WebRTC peers); loopback addresses only when asked. The list is read
/// from the kernel at most once per kInterfaceListLifetime per network namespace (thread-safe); later calls within
/// it return the same.
std::vector<Interface> enumerateInterfaces(bool includeLoopback);
inline constexpr Duration kInterfaceListLifetime = std::chrono::seconds(1);

/// Which local addresses to bind (the ICE agent turns each bound socket into a host candidate).
struct BindOptions {
  /// Only these interface names (e.g. "eth0"); empty = all.
  std::vector<std::string> interfaces;
  /// Only these IPs (ports ignored); empty = all. "127.0.0.1"/"::1" here gives loopback-only gathering.
  std::vector<SocketAddress> addresses;
  bool includeLoopback = false;
  bool ipv4 = true;
  bool ipv6 = true;
  /// Port range; 0/0 = an ephemeral port chosen by the kernel.
  std::uint16_t portMin = 0;
  std::uint16_t portMax = 0;
};

/// A received datagram; `data` points into the thread's batch buffers and is valid until the next recvBatch() on
/// any socket of the same thread.
struct Received {
  SocketAddress remote;
  ByteView data;
};

struct Outgoing {
  SocketAddress remote;
  ByteView data;
};

class UdpSocket {
 public:
  static constexpr std::size_t kBatch = 64;
  static constexpr std::size_t kBufferSize = 2048;

  /// Binds a non-blocking UDP socket to `local` (port 0 = ephemeral). IPv6 sockets are IPV6_V6ONLY.
  static Result<UdpSocket> bind(const SocketAddress& local);
  /// Binds to the first free port in [portMin, portMax].
  static Result<UdpSocket> bindInRange(SocketAddress local, std::uint16_t portMin, std::uint16_t portMax);

  UdpSocket(UdpSocket&& other) noexcept;
  UdpSocket& operator=(UdpSocket&& other) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  ~UdpSocket();

  [[nodiscard]] int fd() const noexcept { return fd_; }
  /// The bound address with the actual port.
  [[nodiscard]] const SocketAddress& localAddress() const noexcept { return local_; }

  /// Drains up to kBatch datagrams with one recvmmsg; empty when nothing is pending. The buffers are one set per
  /// thread, shared by every socket (a poll loop consumes one batch before receiving the next, and a set per
  /// socket was most of an idle connection's memory): the views die at the next recvBatch() on any socket of this
  /// thread. Datagrams longer than kBufferSize are dropped (WebRTC keeps datagrams under ~1200 bytes).
  std::span<const Received> recvBatch();
  /// Sends with sendmmsg; returns how many were sent (the rest hit EAGAIN/errors and are dropped, as UDP may).
  std::size_t sendBatch(std::span<const Outgoing> batch);
  /// One datagram; false if the kernel refused it.
  bool sendTo(const SocketAddress& remote, ByteView data);

 private:
  UdpSocket(int fd, SocketAddress local) : fd_(fd), local_(local) {}
  int fd_ = -1;
  SocketAddress local_;
};

/// The addresses (port 0) of the interfaces that match `options`, in enumerateInterfaces() order.
std::vector<SocketAddress> interfaceAddresses(const BindOptions& options);
/// Why the last interfaceAddresses() of this thread found nothing to bind: the reason the interface list could not
/// be read (e.g. out of descriptors, naming the limits), else "no interface address matches the bind options".
std::string noInterfaceReason();

/// Binds one socket per matching interface address. Addresses that fail to bind are skipped (logged); an error
/// only if nothing could be bound.
Result<std::vector<UdpSocket>> bindInterfaces(const BindOptions& options);

/// Blocks until one of `fds` is readable or `deadline` passes (kNever = no timeout). Returns the number of ready
/// descriptors (0 on timeout); EINTR counts as a wake-up with 0 ready.
Result<int> wait(std::span<const int> fds, Timestamp deadline);
/// The same, also waking when one of `writeFds` becomes writable (a TCP connect finishing, send space).
Result<int> wait(std::span<const int> fds, std::span<const int> writeFds, Timestamp deadline);

/// A level-triggered epoll set. Its own descriptor is readable while any watched descriptor is ready, so it can
/// sit in another poll/epoll loop (an application waiting on many connections and its own descriptors at once).
class Poller {
 public:
  static Result<Poller> create();
  Poller(Poller&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Poller& operator=(Poller&& other) noexcept;
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;
  ~Poller();

  [[nodiscard]] int fd() const noexcept { return fd_; }
  /// Watches `fd` for reading, and for writing too when `write`; a second call changes the interest.
  Status watch(int fd, bool write = false);
  /// Stops watching `fd` (closing a descriptor also removes it, once no duplicate of it remains open).
  void unwatch(int fd);
  /// Registers `fd` with no interest: it is never reported (an eventfd raises no error or hang-up) until
  /// setReadInterest(fd, true). The UDP mux's wake-up descriptor, shared by every member's epoll set.
  Status watchNothing(int fd);
  /// Turns the read interest of a descriptor added by watchNothing() on or off (one epoll_ctl; the kernel
  /// re-checks readiness on a change, so turning it on for a readable descriptor makes this set readable).
  Status setReadInterest(int fd, bool read);

 private:
  explicit Poller(int fd) : fd_(fd) {}
  int fd_ = -1;
};

/// Numeric IPv4/IPv6 literals and "localhost" (resolved with getaddrinfo, IPv4 preferred); no other DNS.
Result<SocketAddress> resolve(std::string_view host, std::uint16_t port);

}  // namespace rtcpeer::net
