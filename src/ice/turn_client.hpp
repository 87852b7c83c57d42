// Sans-IO TURN client (RFC 8656) for one allocation: one (local socket or stream, TURN server) pair.
//
// The ICE agent owns one TurnClient per allocation and treats the relayed address as one more local socket.
// The client owns no socket and no clock: the agent feeds it what the server sent (`handleMessage` for one STUN
// message or ChannelData frame; over TCP/TLS `appendStream` + `nextFrame` split the byte stream first), drains the
// control messages it wants to send (`pollTransmit`), and calls `handleTimeout` at `nextDeadline`.
//
// Lifecycle: start() sends an unauthenticated Allocate; the 401 gives REALM and NONCE and the request is retried
// with long-term credentials (RFC 8489 9.2). A 438 (stale nonce) on any request retries it with the new nonce.
// Allocated: the allocation is refreshed at 3/4 of its lifetime, each permission (RFC 8656 9: 300 s) every 4
// minutes while it is in use, each channel binding (10 min) every 8 minutes. close() deallocates (Refresh with
// LIFETIME 0). Failures (wrong credentials, 486 quota, unreachable server, a refresh that fails) end in Failed with
// a reason; nothing is retried after that.
//
// Data to peers: `wrap()` frames a payload as ChannelData once a channel is bound to the peer, else as a Send
// indication; payloads to a peer without a confirmed permission are held (bounded) until CreatePermission
// succeeds, because servers drop Send indications without one (RFC 8656 10.2).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "common/address.hpp"
#include "common/bytes.hpp"
#include "common/random.hpp"
#include "common/time.hpp"
#include "stun/stun.hpp"

namespace rtcpeer::ice {

/// How the client reaches the TURN server: `turn:` over UDP, `turn:...?transport=tcp`, `turns:` (TLS over TCP).
enum class TurnTransport : std::uint8_t { Udp, Tcp, Tls };
std::string_view toString(TurnTransport t) noexcept;

struct TurnServer {
  SocketAddress address;
  TurnTransport transport = TurnTransport::Udp;
  std::string username;
  std::string password;
};

struct TurnClientConfig {
  TurnServer server;
  /// The relayed address family to allocate: IPv6 adds REQUESTED-ADDRESS-FAMILY (RFC 8656 7.1, RFC 6156);
  /// IPv4 is the servers' default. The agent asks for the server's own family. A 440 answer, or a relayed
  /// address of the other family, fails the client with a reason.
  SocketAddress::Family relayFamily = SocketAddress::Family::V4;
  /// UDP: first RTO, doubled per retransmission, at most `maxTransmits` sends (RFC 8489 6.2.1). Over a stream
  /// requests are sent once and time out after `streamTimeout` (RFC 8489 6.2.2 suggests 39.5 s).
  Duration rto = 250ms;
  int maxTransmits = 7;
  Duration streamTimeout = 10s;
  /// LIFETIME asked for in Allocate/Refresh (the server may grant less; RFC 8656 default 600 s).
  std::uint32_t lifetimeSeconds = 600;
  Duration permissionRefresh = 240s;  // permissions live 300 s (RFC 8656 9)
  Duration channelRefresh = 480s;     // channel bindings live 600 s (RFC 8656 12)
  /// Payloads held per peer while its permission is being created.
  std::size_t maxHeld = 16;
};

/// Application data (or a relayed STUN check) from a peer, unwrapped from a Data indication or ChannelData.
struct TurnInbound {
  SocketAddress peer;
  ByteView data;  // view into the frame given to handleMessage
};

class TurnClient {
 public:
  enum class State : std::uint8_t { Idle, Allocating, Allocated, Failed, Closed };

  TurnClient(TurnClientConfig config, Random& random);

  [[nodiscard]] State state() const noexcept { return state_; }
  [[nodiscard]] const TurnServer& server() const noexcept { return config_.server; }
  [[nodiscard]] bool stream() const noexcept { return config_.server.transport != TurnTransport::Udp; }
  /// XOR-RELAYED-ADDRESS and XOR-MAPPED-ADDRESS of the allocation (valid once Allocated).
  [[nodiscard]] const SocketAddress& relayedAddress() const noexcept { return relayed_; }
  [[nodiscard]] const SocketAddress& mappedAddress() const noexcept { return mapped_; }
  /// Why the client failed (empty unless Failed).
  [[nodiscard]] const std::string& failureReason() const noexcept { return failure_; }

  void start(Timestamp now);
  /// Deallocates (Refresh LIFETIME=0, sent once) and stops all timers.
  void close();

  /// Makes sure a permission for the peer's IP exists and is refreshed while in use.
  void addPermission(const SocketAddress& peer, Timestamp now);
  /// Binds a channel to the peer (idempotent); data goes as ChannelData once the server confirmed it.
  void bindChannel(const SocketAddress& peer, Timestamp now);
  [[nodiscard]] bool hasChannel(const SocketAddress& peer) const;

  /// Frames `payload` for `peer`: the returned bytes go to the server (valid until the next call). nullopt: the
  /// payload is held until the permission exists (then it comes out of pollTransmit), or dropped if not Allocated.
  std::optional<ByteView> wrap(const SocketAddress& peer, ByteView payload, Timestamp now);

  /// One message from the server (a UDP datagram or a frame from nextFrame). Returns data from a peer, if it was a
  /// Data indication or ChannelData of a known peer; responses update the state. Anything else is ignored.
  std::optional<TurnInbound> handleMessage(ByteView message, Timestamp now);

  /// Stream transports: append received bytes, then take complete frames (STUN messages and ChannelData, the
  /// latter padded to 4 bytes, RFC 8656 12.5) until nullopt. A frame view is valid until the next appendStream.
  /// A malformed stream (first byte neither STUN nor ChannelData) fails the client.
  void appendStream(ByteView bytes);
  std::optional<ByteView> nextFrame();

  void handleTimeout(Timestamp now);
  [[nodiscard]] Timestamp nextDeadline() const;
  /// Bytes to send to the server (one datagram each over UDP; appended to the stream otherwise).
  std::optional<Bytes> pollTransmit();

  /// The server reported the stream closed (or it could not be opened): fails the client with `reason`.
  void handleTransportError(std::string_view reason);

 private:
  enum class Kind : std::uint8_t { Allocate, Refresh, Permission, ChannelBind };
  struct Transaction {
    stun::TransactionId id{};
    Kind kind = Kind::Allocate;
    SocketAddress peer;        // Permission / ChannelBind
    std::uint16_t channel = 0;  // ChannelBind
    std::uint32_t lifetime = 0;  // Refresh
    bool authenticated = false;
    bool retriedNonce = false;
    Bytes packet;
    Timestamp next{}, giveUp{};
    Duration rto{};
    int transmits = 0;
  };
  struct Permission {
    SocketAddress ip;  // port 0: permissions are per IP address (RFC 8656 9)
    bool installed = false;
    bool pending = false;
    Timestamp refreshAt = kNever;
    std::deque<Bytes> held;
  };
  struct Channel {
    SocketAddress peer;
    std::uint16_t number = 0;
    bool bound = false;
    bool pending = false;
    Timestamp refreshAt = kNever;
  };

  void send(Kind kind, Timestamp now, const SocketAddress& peer = {}, std::uint16_t channel = 0,
            std::uint32_t lifetime = 0, bool retriedNonce = false);
  void build(Transaction& t);
  void transmit(Transaction& t, Timestamp now);
  void fail(std::string reason);
  void onResponse(Transaction t, const stun::Message& m, Timestamp now);
  void onError(Transaction& t, const stun::Message& m, Timestamp now);
  void onTimeout(const Transaction& t);
  Permission* findPermission(const SocketAddress& peer);
  Channel* findChannel(const SocketAddress& peer);

  TurnClientConfig config_;
  Random& random_;
  State state_ = State::Idle;
  std::string failure_;
  std::string realm_, nonce_;
  std::array<std::uint8_t, 16> key_{};
  bool haveKey_ = false;
  SocketAddress relayed_, mapped_;
  Timestamp refreshAt_ = kNever;
  std::vector<Transaction> transactions_;
  std::vector<Permission> permissions_;
  std::vector<Channel> channels_;
  std::uint16_t nextChannel_ = stun::kMinChannel;
  std::deque<Bytes> transmits_;
  Bytes scratch_;
  Bytes stream_;          // received stream bytes not yet consumed
  std::size_t streamPos_ = 0;
};

}  // namespace rtcpeer::ice
