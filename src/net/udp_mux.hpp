// One UDP port for many connections (Configuration::udpMux): a process-wide registry of shared sockets, one per
// local address, and LocalSocket, a connection's UDP endpoint on one local address (its own socket, or its
// registration on the shared one). Datagrams on a shared socket are routed to their connection:
//   1. a STUN Binding request by the ICE username fragment before the ':' of its USERNAME, which is the
//      receiver's ufrag (RFC 8445 7.2.2, RFC 5389 15.3); a request whose ufrag no connection has is dropped;
//   2. a STUN response by the transaction id of the request a connection sent (a fixed-size table; a miss falls
//      back to 3), so several connections may use one STUN server;
//   3. anything else (DTLS, indications, responses) by the remote address: a connection owns the remote
//      addresses it sends to, if no other connection does. It only sends to candidates of its peer and answers
//      requests that matched its ufrag and passed MESSAGE-INTEGRITY, so a peer-reflexive address becomes its own
//      the moment the ICE agent answers the first check from it, before the peer can send DTLS there. Such a
//      success response, or a response to one of its own checks, moves an address from another connection (a
//      client that reconnected from the same address to a new connection while the old one still runs); plain
//      sending does not. Unknown senders are dropped, unstored.
// Relayed paths: a TURN allocation is identified by the client's 5-tuple (RFC 8656 2.2), so two connections
// cannot allocate on one TURN server from one shared socket. A connection on a mux therefore sends its TURN traffic
// (Allocate, Refresh, CreatePermission, ChannelBind, Send indications, ChannelData) from a private socket of its own
// on the same IP, created on the first such datagram; what arrives on it is reported with the shared local address,
// so the ICE agent sees one host base.
//
// Poll cost: a connection's recvBatch() first returns what other connections' polls queued for it, then reads the
// shared socket (bounded), returning its own datagrams and copying the others' into their bounded queues (slots of
// a pool owned by the mux, reused: no allocation per datagram once warm) and waking them. The wake-up is an
// eventfd that is always readable, shared by a group of 64 members, held by each one's epoll set (its connection's
// fileDescriptor()) with no interest; turning the interest on in one member's set (EPOLL_CTL_MOD, one syscall)
// makes that set readable, and the member turns it off when its queue is drained. So a connection on a mux costs
// one descriptor (its epoll set) and 1/64 of an eventfd. (Groups, not one eventfd per mux: the kernel refuses a
// file reachable through more than 500 nested epoll sets, and a server nests every connection's.)
// The shared socket itself is watched by one member's epoll set at a time (the "watcher", handed on when it leaves
// or its connection ends), so a datagram wakes one connection, never all of them, and nothing scans the list of
// connections.
//
// Threading: every use of one shared socket (join, receive, send, leave) must happen on the thread that created it
// (the first join); a join or a receive from another thread is refused with an error. A LocalSocket destroyed on
// another thread hands its registration to the owner thread, which removes it at its next use of the mux.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/udp.hpp"

namespace rtcpeer::net {

class UdpMux;
struct MuxMember;

namespace mux {

/// What routing reads from a datagram (RFC 7983: first byte 0..3 is STUN).
struct Inspection {
  enum class Kind { Other, Request, Indication, Response, Turn };
  Kind kind = Kind::Other;
  bool binding = false;              ///< the STUN method is Binding
  bool success = false;              ///< a success response
  std::string_view ufrag;            ///< Binding request: USERNAME up to ':' (views the datagram); may be empty
  std::array<std::uint8_t, 12> transaction{};  ///< any STUN message
};

/// Classifies a datagram without allocating; never reads outside it. Kind::Turn: a TURN client message
/// (Allocate, Refresh, Send, CreatePermission, ChannelBind) or a ChannelData frame (first byte 64..79).
Inspection inspect(ByteView datagram) noexcept;

}  // namespace mux

/// How a connection joins a mux: its local ICE ufrag (what USERNAME starts with in requests sent to it) and its
/// epoll set (which holds the mux's wake-up eventfd, and the shared socket while it is the watcher). Two members
/// of one mux cannot share an epoll set.
struct MuxJoin {
  std::string ufrag;
  std::shared_ptr<Poller> poller;
};

/// Counters of one shared socket (and of the member asking), for ConnectionStats, tests and benchmarks.
struct MuxStats {
  std::size_t members = 0;
  std::size_t remoteRoutes = 0;     ///< remote addresses routed to a member
  std::size_t queued = 0;           ///< datagrams waiting in members' queues
  std::size_t poolSlots = 0;        ///< queue buffers allocated (reused; trimmed back when idle)
  std::size_t poolBound = 0;        ///< most queue buffers the pool may hold now: max(kMinPool, 4 x members)
  std::uint64_t droppedUnknown = 0; ///< from unknown senders, requests with an unknown ufrag, or for ended connections
  std::uint64_t droppedFull = 0;    ///< a member's queue or the pool was full
  std::uint64_t memberDroppedFull = 0;  ///< of those, datagrams for the member asking
};

/// A connection's UDP endpoint on one local address. Movable; destroying a shared one leaves the mux (the last
/// member to leave closes the shared socket).
class LocalSocket {
 public:
  static constexpr std::size_t kMaxQueued = 256;  ///< per member
  /// Queue buffers (kBufferSize each) per shared socket: at most max(kMinPool, 4 x members), allocated as needed,
  /// reused, and trimmed back to a few hundred once the pool has been idle for a while (counted in receives).
  static constexpr std::size_t kMinPool = 8192;

  explicit LocalSocket(UdpSocket own);
  /// Registers on the shared socket of `local` (IP and port), binding it if this is the first member. Fails if
  /// the port cannot be bound, if another thread owns it, or if `join.ufrag` is empty or already registered.
  static Result<LocalSocket> join(const SocketAddress& local, const MuxJoin& join);

  LocalSocket(LocalSocket&& other) noexcept;
  LocalSocket& operator=(LocalSocket&& other) noexcept;
  LocalSocket(const LocalSocket&) = delete;
  LocalSocket& operator=(const LocalSocket&) = delete;
  ~LocalSocket();

  /// What the connection's epoll set must watch: its own socket, or -1 on a mux, which registers itself in the
  /// epoll set given to join() (its wake-up, readable while datagrams wait in the member's queue; the shared
  /// socket while the member is the watcher; a private TURN socket).
  [[nodiscard]] int fd() const noexcept;
  [[nodiscard]] const SocketAddress& localAddress() const noexcept;
  [[nodiscard]] bool shared() const noexcept { return mux_ != nullptr; }
  /// Ok, or why this thread may not use the shared socket.
  [[nodiscard]] Status checkThread() const;

  /// This connection's next datagrams, empty when none is left (a batch shorter than kBatch may still be followed
  /// by more). Views valid until the next recvBatch() of any socket on this thread.
  std::span<const Received> recvBatch();
  /// Sends; on a shared socket the remote addresses (and STUN transactions) become this member's routes.
  std::size_t sendBatch(std::span<const Outgoing> batch);

  /// The connection ended (Failed or Closed) but the application may keep the object without polling it: the
  /// shared socket's watch moves to a live member, so the others keep waking up on their datagrams.
  void retire();

  /// After an ICE restart: requests for `ufrag` come here from now on, and those for the ufrag it replaces until
  /// the next restart (the peer's checks until it has our new description). No-op for an own socket.
  Status setUfrag(std::string_view ufrag);

  /// The counters of this endpoint's shared socket (zeros for an own socket).
  [[nodiscard]] MuxStats muxStats() const;

 private:
  LocalSocket() = default;
  void leave() noexcept;

  std::optional<UdpSocket> own_;
  std::shared_ptr<UdpMux> mux_;
  std::unique_ptr<MuxMember> member_;
};

/// bindInterfaces() for connections: own sockets, or with `mux` one registration per matching address on port
/// options.portMin (which must equal portMax). An error only if nothing could be bound, with the last reason.
Result<std::vector<LocalSocket>> bindLocal(const BindOptions& options, const MuxJoin* mux);

}  // namespace rtcpeer::net
