// The sans-IO PeerConnection core: the ICE agent, DTLS endpoint, SCTP association and data-channel manager of one
// connection attempt, composed behind one str0m-style object. It owns every protocol decision of the connection
// (offer/answer, transport bring-up, channel glue, close and failure paths) and no I/O: no socket, poller, stream,
// resolver, clock or thread. It includes nothing from src/net (CMake checks it: target rtcpeer_peer_core).
//
// Contract (the I/O shell is src/peer/session.cpp; the simulator tests drive it the same way, tests/sim):
//  - inputs: `handleDatagram` (one UDP datagram with the local socket address and the sender), the TCP/TLS TURN
//    stream inputs (`handleStreamInput`, `handleStreamClosed`), `handleResolved` (an answer to a Resolve request),
//    `setLocalAddresses` (the bound sockets, once `wantsLocalAddresses()`), `handleTimeout(now)`, and the API calls.
//    Every input takes `now`; the core never reads a clock. Inputs only change state and queue work.
//  - outputs: `pollOutput(now)` runs the inter-layer pump and yields, one at a time: Transmits (then a Flush, the
//    batch boundary), stream-open and name-resolve requests, signals, channel changes and received messages, and
//    finally a Timeout with the next deadline (kNever if none). Drain it until the Timeout after each batch of
//    inputs. A Transmit's bytes are valid until the Flush that ends its batch: send (or copy) them by then.
//  - ordering: what one pump pass moves follows the wire (see pump()): a peer's last records and messages reach
//    their channels before the close_notify / ABORT that follows them, messages before the stream resets after
//    them, a channel's OPEN before the messages on it; outputs come out in the order they were produced.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <variant>
#include <vector>

#include "common/random.hpp"
#include "common/time.hpp"
#include "datachannel/channel_manager.hpp"
#include "dtls/certificate.hpp"
#include "dtls/endpoint.hpp"
#include "ice/agent.hpp"
#include "rtcpeer/configuration.hpp"
#include "rtcpeer/data_channel.hpp"
#include "rtcpeer/peer_connection.hpp"
#include "rtcpeer/stats.hpp"
#include "sctp/association.hpp"
#include "sdp/sdp.hpp"

namespace rtcpeer {

/// An Error plus its reason, what every entry point of the core and of Session returns.
struct Outcome {
  Error code = Error::Ok;
  std::string reason;
  static Outcome ok() { return {}; }
};

inline Outcome failure(Error code, std::string reason) { return {code, std::move(reason)}; }

namespace peer {

using ChannelKey = datachannel::ChannelKey;

/// What pollOutput() yields.
namespace out {
/// Send `data` from socket `local` to `remote` (Udp), or append it to the stream to TURN server `remote` (Tcp/Tls).
/// `data` is valid until the next Flush.
struct Transmit {
  ice::TurnTransport transport = ice::TurnTransport::Udp;
  SocketAddress local, remote;
  ByteView data;
};
/// The end of a batch of Transmits: send what was collected (one sendmmsg per socket); their bytes die now.
struct Flush {};
/// Open the TCP/TLS stream to a TURN server (first use); report failure with handleStreamClosed. `host` is the
/// name from the URL, the TLS name to verify unless it is an IP literal.
struct OpenStream {
  ice::TurnTransport transport = ice::TurnTransport::Tcp;
  SocketAddress server;
  std::string host;
};
/// Resolve an ICE server's host name; answer with handleResolved(id, ...).
struct Resolve {
  std::uint64_t id = 0;
  std::string host;
  std::uint16_t port = 0;
};
struct Description {
  std::string type, sdp;
};
/// A local candidate to signal (an empty line: end-of-candidates).
struct Candidate {
  std::string mid;
  int index = 0;
  std::string line;
};
struct Gathering {
  GatheringState state = GatheringState::New;
};
/// The connection state changed (`reason` says why for Failed and Closed).
struct StateChange {
  ConnectionState state = ConnectionState::New;
  std::string reason;
};
/// The peer opened a channel (DCEP OPEN).
struct ChannelReceived {
  ChannelKey key = 0;
};
/// A channel's state (or stream id) changed; read channelInfo()/readyState(). `reason`: why it closed.
struct ChannelChanged {
  ChannelKey key = 0;
  std::string reason;
};
/// A message for an Open channel. It costs `cost` against the receive window until released(cost).
struct Message {
  ChannelKey key = 0;
  bool text = false;
  Bytes data;
  std::size_t cost = 0;
};
/// Nothing more to do before `at` (kNever: until the next input).
struct Timeout {
  Timestamp at = kNever;
};
}  // namespace out

using Output = std::variant<out::Transmit, out::Flush, out::OpenStream, out::Resolve, out::Description,
                            out::Candidate, out::Gathering, out::StateChange, out::ChannelReceived,
                            out::ChannelChanged, out::Message, out::Timeout>;

class Connection {
 public:
  /// Validates `config` and makes the DTLS identity (generated, or from the configured PEM).
  static Result<std::unique_ptr<Connection>> create(const Configuration& config, Random& random);
  Connection(const Configuration& config, std::shared_ptr<const dtls::Certificate> certificate, Random& random);

  // --- Offer/answer (connection_negotiation.cpp) -----------------------------------------------------------
  Outcome createOffer();
  Outcome setLocalDescription(std::string_view type, std::string_view sdp, Timestamp now);
  Outcome setRemoteDescription(std::string_view type, std::string_view sdp, Timestamp now);
  Outcome addIceCandidate(std::string_view media, int index, std::string_view line, Timestamp now);
  /// ICE restart (RFC 8445 9, JSEP 5.2.1): new local credentials for the next offer; the selected pair keeps
  /// carrying data until the restarted checks select one. A remote offer with new credentials restarts too.
  void restartIce(Timestamp now);
  /// True once a local description is set and no local addresses were given yet: bind the sockets and call
  /// setLocalAddresses (or failTransport).
  [[nodiscard]] bool wantsLocalAddresses() const noexcept { return haveLocal_ && !addressesGiven_ && !closed_; }
  /// The bound UDP sockets' addresses: host candidates, gathering starts.
  void setLocalAddresses(std::span<const SocketAddress> locals, Timestamp now);
  /// The shell could not provide the transport (no socket could be bound): the connection fails with `reason`.
  void failTransport(std::string reason, Timestamp now);

  // --- Channels (connection_channels.cpp) -------------------------------------------------------------------
  Result<ChannelKey> createDataChannel(std::string_view label, const DataChannelInit& init, Timestamp now);
  Outcome send(ChannelKey key, ByteView message, bool text, Timestamp now);
  void closeChannel(ChannelKey key, Timestamp now);
  /// The channel's public object is gone: close it and forget it once closed.
  void releaseChannel(ChannelKey key, Timestamp now);
  [[nodiscard]] const datachannel::ChannelInfo* channelInfo(ChannelKey key) const { return channels_.info(key); }
  /// The channel's state as the application sees it (Closed also when it closed locally only).
  [[nodiscard]] ReadyState readyState(ChannelKey key) const;
  [[nodiscard]] std::size_t bufferedAmount(ChannelKey key) const;
  [[nodiscard]] std::size_t remoteMaxMessageSize() const noexcept { return channels_.remoteMaxMessageSize(); }
  /// A buffer the application is done with: reused for a later received message.
  void recycle(Bytes buffer) {
    if (sctp_) sctp_->recycle(std::move(buffer));
  }
  /// Received messages worth `cost` left the application's inboxes (read or dropped): the window reopens.
  void released(std::size_t cost);
  /// Receive back-pressure: a message's cost while it waits unread (its bytes plus a fixed overhead, so a flood
  /// of tiny messages is bounded too).
  static std::size_t readCost(const Bytes& message) noexcept { return message.size() + 64; }

  // --- I/O inputs -------------------------------------------------------------------------------------------
  void handleDatagram(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now);
  void handleStreamInput(ice::TurnTransport transport, const SocketAddress& server, ByteView bytes, Timestamp now);
  void handleStreamClosed(ice::TurnTransport transport, const SocketAddress& server, std::string_view reason,
                          Timestamp now);
  /// The answer to Resolve `id`: its addresses, or none and why.
  void handleResolved(std::uint64_t id, std::span<const SocketAddress> addresses, std::string_view error,
                      Timestamp now);
  void handleTimeout(Timestamp now);

  // --- Output -----------------------------------------------------------------------------------------------
  Output pollOutput(Timestamp now) {
    // The common case inline: the next datagram of the current batch.
    if (cursor_ < staged_.size() && !staged_[cursor_].open) {
      const Staged& s = staged_[cursor_++];
      return out::Transmit{s.transport, s.local, s.remote, s.data};
    }
    return pollOutputSlow(now);
  }
  /// The earliest time handleTimeout is due (timers only; pollOutput's Timeout also counts queued work).
  [[nodiscard]] Timestamp nextDeadline() const;
  /// Work queued by inputs that only pollOutput() moves (a message to send, a signal to hand out).
  [[nodiscard]] bool hasWork() const noexcept {
    return dirty_ || head_ < queue_.size() || cursor_ < staged_.size() || !staged_.empty();
  }

  /// Best effort goodbye (SCTP ABORT "Close called", DTLS close_notify, TURN deallocations), then Closed. Drain
  /// pollOutput() once more to send the goodbye; nothing else comes out afterwards.
  void close(Timestamp now);

  [[nodiscard]] bool closed() const noexcept { return closed_; }
  [[nodiscard]] ConnectionState connectionState() const noexcept { return connection_; }
  [[nodiscard]] SignalingState signalingState() const noexcept { return signaling_; }
  [[nodiscard]] const std::string& failureReason() const noexcept { return failureReason_; }
  [[nodiscard]] ConnectionStats stats() const;  // stats.cpp
  [[nodiscard]] const ice::Credentials& localCredentials() const noexcept { return localCredentials_; }
  [[nodiscard]] const Configuration& configuration() const noexcept { return config_; }

 private:
  // One datagram or stream write waiting for the shell: the bytes are a DTLS endpoint's own buffer (valid until
  // the endpoint writes again, i.e. the next pump pass) or a copy in a reused slot of txPool_.
  struct Staged {
    ice::TurnTransport transport;
    SocketAddress local, remote;
    ByteView data;
    bool open = false;  // an OpenStream request for stream (transport, remote) instead
  };
  struct TurnStream {
    ice::TurnTransport transport;
    SocketAddress server;
    std::string host;
    bool opened = false, failed = false;
  };
  struct PendingName {
    std::uint64_t id;
    std::string url;
    IceServerUrl parsed;
    std::string username, credential;
  };

  // connection.cpp: the pump, transport bring-up, sending, state.
  Output pollOutputSlow(Timestamp now);
  bool pumpPass(Timestamp now);
  bool pumpSctp(Timestamp now);
  bool pumpChannels(Timestamp now);
  void deliver(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now);
  void handleIceEvent(const ice::Event& e, Timestamp now);
  void handleDtlsEvent(const dtls::Event& e, Timestamp now);
  void sendVia(ice::TurnTransport transport, const SocketAddress& local, const SocketAddress& remote, ByteView data,
               bool borrowed);
  void sendDtlsDatagrams(Timestamp now);
  template <class T>
  void push(T&& output) {
    queue_.emplace_back(std::forward<T>(output));
  }
  void setConnection(ConnectionState s, std::string reason = {});
  void rearmConnectDeadline(Timestamp now);
  void failConnection(std::string reason, Timestamp now);

  // connection_negotiation.cpp
  sdp::LocalParams localParams(sdp::Setup setup) const;
  Outcome startTransport(Timestamp now);
  Outcome applyRemote(const sdp::SessionDescription& remote, std::size_t section, bool isOffer, Timestamp now);
  void createAgent(ice::Role role);
  void addServer(const IceServerUrl& u, const SocketAddress& address, const std::string& username,
                 const std::string& credential, ice::AgentConfig* config, ice::Agent::Resolved* resolved);

  // connection_channels.cpp
  void handleSctpEvent(const sctp::Event& e, Timestamp now);
  void handleStreamReset(const sctp::StreamReset& r);
  void handleMessage(std::uint16_t stream, std::uint32_t ppid, Bytes& payload);
  bool holdBack(std::uint16_t stream, std::uint32_t ppid, Bytes& payload);
  void releaseHeld();
  void closeLocallyOnly(std::uint16_t stream);
  void handleChannelEvent(const datachannel::Event& e);
  void deliverMessage(ChannelKey key, bool text, ByteView data, Bytes* owned);

  Configuration config_;
  Random& random_;
  std::shared_ptr<const dtls::Certificate> certificate_;
  ice::Credentials localCredentials_;
  std::uint64_t sessionId_ = 0;
  std::uint64_t sessionVersion_ = 0;

  std::vector<TurnStream> streams_;
  std::vector<PendingName> names_;
  std::uint64_t nextNameId_ = 1;
  std::optional<ice::Agent> agent_;
  std::optional<dtls::Endpoint> dtls_;
  std::optional<sctp::Association> sctp_;
  datachannel::ChannelManager channels_;
  std::unordered_set<ChannelKey> closedLocally_;  // closed without a stream reset (closeLocallyOnly)
  std::unordered_set<ChannelKey> orphans_;        // released by the application, forgotten once Closed
  struct HeldMessage {
    std::uint16_t stream;
    std::uint32_t ppid;
    Bytes payload;
  };
  std::vector<HeldMessage> held_;  // messages for a stream whose old channel still closes here (holdBack)

  ConnectionState connection_ = ConnectionState::New;
  SignalingState signaling_ = SignalingState::Stable;
  std::string failureReason_;
  bool closed_ = false;
  bool dtlsTraffic_ = false;  // DTLS records moved since the last handleTimeout (idle buffer release)
  Timestamp lastDtlsTraffic_{};
  bool idleReleased_ = false;  // the buffers were released since the last traffic

  // Offer/answer.
  std::string createdType_, createdSdp_;
  bool haveLocal_ = false;
  bool addressesGiven_ = false;
  std::optional<sdp::SessionDescription> remote_;
  std::size_t remoteSection_ = 0;
  std::string mid_ = "0";
  int mlineIndex_ = 0;
  std::uint16_t remoteSctpPort_ = 5000;
  bool dtlsClient_ = false;
  bool dtlsStarted_ = false;
  Timestamp dtlsStartedAt_{};  // how long the DTLS handshake took sets the SCTP handshake's fail-fast bound
  bool restartPending_ = false;  // restartIce(): the next local description carries the new credentials
  std::vector<Output> heldCandidates_;  // gathered since restartIce(), signalled once that description is set
  std::optional<ice::SelectedPair> selected_;
  Timestamp connectDeadline_ = kNever;

  // Output. The queue is a vector consumed from head_ and cleared when drained, so the steady state allocates
  // nothing; staged_ holds one pump pass's transmits (cursor_: the next to hand out).
  std::vector<Output> queue_;
  std::size_t head_ = 0;
  std::vector<Staged> staged_;
  std::size_t cursor_ = 0;
  std::vector<Bytes> txPool_;
  std::size_t txPoolUsed_ = 0;
  bool dirty_ = false;  // an input may have given the pump something to move
  int passes_ = 0;      // pump passes since the last Timeout (bounded: kMaxPumpPasses)
  Timestamp deadline_ = kNever;  // nextDeadline() as of the last Timeout
  bool deadlineValid_ = false;
};

}  // namespace peer
}  // namespace rtcpeer
