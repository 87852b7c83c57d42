// One WebRTC connection attempt: the composition of the sans-IO cores (ICE agent, DTLS endpoint, SCTP
// association, data-channel manager) with the UDP sockets of src/net. PeerConnection owns one Session per
// initialize(); DataChannels hold it weakly, so a channel outliving its connection is safe.
//
// Single-threaded and callback-free: state changes that the application must hear about are queued as Signals
// and handed to PeerConnection, which emits them at the end of poll().
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "common/random.hpp"
#include "common/time.hpp"
#include "datachannel/channel_manager.hpp"
#include "dtls/certificate.hpp"
#include "dtls/endpoint.hpp"
#include "ice/agent.hpp"
#include "net/resolver.hpp"
#include "net/stream.hpp"
#include "net/udp.hpp"
#include "net/udp_mux.hpp"
#include "rtcpeer/configuration.hpp"
#include "rtcpeer/data_channel.hpp"
#include "rtcpeer/peer_connection.hpp"
#include "sctp/association.hpp"
#include "sdp/sdp.hpp"

namespace rtcpeer {

/// The state behind one public DataChannel object.
class DataChannel::Impl {
 public:
  struct Packet {
    Bytes data;
    bool text = false;
  };

  std::weak_ptr<class Session> session;
  datachannel::ChannelKey key = 0;
  std::string label;
  std::string protocol;
  int id = kUnset;
  bool ordered = true;
  int maxPacketLifeTime = kUnset;
  int maxRetransmits = kUnset;
  bool negotiated = false;
  ReadyState state = ReadyState::Connecting;
  WriteMode writeMode = WriteMode::Binary;
  std::deque<Packet> inbox;
  /// What the inbox costs against the association's receive window (Session::readCost per message).
  std::size_t unreadCost = 0;
  bool lastWasString = false;
  std::string lastError;

  Error failWith(Error code, std::string reason) {
    lastError = std::move(reason);
    return code;
  }
};

namespace detail {
struct DataChannelAccess {
  static std::shared_ptr<DataChannel> make(std::shared_ptr<DataChannel::Impl> impl) {
    return std::shared_ptr<DataChannel>(new DataChannel(std::move(impl)));
  }
};
}  // namespace detail

/// A signal waiting for the end of poll().
struct Signal {
  struct Description {
    std::string type, sdp;
  };
  struct Candidate {
    std::string mid;
    int index = 0;
    std::string line;
  };
  using Channel = std::shared_ptr<DataChannel>;
  // A gathering state change takes effect for the application in order with the candidates around it.
  std::variant<Description, Candidate, Channel, GatheringState> value;
};

/// An Error plus its reason, what every Session entry point returns.
struct Outcome {
  Error code = Error::Ok;
  std::string reason;
  static Outcome ok() { return {}; }
};

inline Outcome failure(Error code, std::string reason) { return {code, std::move(reason)}; }

class Session : public std::enable_shared_from_this<Session> {
 public:
  /// Validates `config` and generates the DTLS identity. The session's sockets are watched by `poller` (the
  /// PeerConnection's, shared by its successive sessions).
  static Result<std::shared_ptr<Session>> create(const Configuration& config, std::shared_ptr<net::Poller> poller);
  ~Session();

  Result<std::shared_ptr<DataChannel>> createDataChannel(std::string_view label, const DataChannelInit& init);
  Outcome createOffer();
  Outcome setLocalDescription(std::string_view type, std::string_view sdp);
  Outcome setRemoteDescription(std::string_view type, std::string_view sdp);
  Outcome addIceCandidate(std::string_view media, int index, std::string_view name);

  /// Fails only when the connection shares a port (udpMux) owned by another thread.
  Outcome poll();
  Outcome wait(std::chrono::milliseconds timeout);
  [[nodiscard]] Timestamp nextDeadline() const;
  void close();

  [[nodiscard]] bool closed() const noexcept { return closed_; }
  [[nodiscard]] ConnectionState connectionState() const noexcept { return connection_; }
  [[nodiscard]] SignalingState signalingState() const noexcept { return signaling_; }
  [[nodiscard]] ConnectionStats stats() const;  // stats.cpp

  /// Signals queued since the last call, oldest first (the caller emits them).
  std::vector<Signal> takeSignals() { return std::exchange(signals_, {}); }
  [[nodiscard]] bool hasSignals() const noexcept { return !signals_.empty(); }

  // DataChannel entry points.
  Error send(DataChannel::Impl& channel, ByteView message, bool text);
  void closeChannel(DataChannel::Impl& channel);
  void releaseChannel(datachannel::ChannelKey key);
  /// A buffer the application handed back through getPacket(): reused for a later received message.
  void recycle(Bytes buffer) {
    if (sctp_) sctp_->recycle(std::move(buffer));
  }
  [[nodiscard]] std::size_t bufferedAmount(const DataChannel::Impl& channel) const;
  /// Receive back-pressure: a message's cost against the receive window while it waits in an inbox (its bytes
  /// plus a fixed overhead, so a flood of tiny messages is bounded too), and its release when read or dropped.
  static std::size_t readCost(const Bytes& message) noexcept { return message.size() + 64; }
  void released(std::size_t cost);
  [[nodiscard]] std::size_t remoteMaxMessageSize() const noexcept { return channels_.remoteMaxMessageSize(); }

 private:
  // One datagram waiting for flush(): a DTLS endpoint's own buffer, or a copy in a reused slot of txPool_.
  struct Staged {
    std::size_t socket;
    SocketAddress remote;
    ByteView data;
  };

  Session(const Configuration& config, std::shared_ptr<const dtls::Certificate> certificate,
          std::shared_ptr<net::Poller> poller);

  sdp::LocalParams localParams(sdp::Setup setup) const;
  Outcome startTransport();
  Outcome applyRemote(const sdp::SessionDescription& remote, std::size_t section, bool isOffer);
  void createAgent(ice::Role role);
  void serviceResolver(Timestamp now);

  void receive(std::size_t socket, const net::Received& datagram, Timestamp now);
  void deliver(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now);
  void serviceStreams(Timestamp now);
  void watchStreams();
  void sendVia(ice::TurnTransport transport, const SocketAddress& local, const SocketAddress& remote, ByteView data,
               bool borrowed = false);
  void fireTimers(Timestamp now);
  void pump(Timestamp now);
  bool pumpSctp();
  bool pumpChannels(Timestamp now);
  void handleIceEvent(const ice::Event& e, Timestamp now);
  void handleDtlsEvent(const dtls::Event& e, Timestamp now);
  void handleSctpEvent(const sctp::Event& e);
  void handleStreamReset(const sctp::StreamReset& r);
  void handleMessage(std::uint16_t stream, std::uint32_t ppid, Bytes& payload);
  bool holdBack(std::uint16_t stream, std::uint32_t ppid, Bytes& payload);
  void releaseHeld();
  void closeLocallyOnly(std::uint16_t stream);
  void handleChannelEvent(const datachannel::Event& e);
  void deliver(datachannel::ChannelKey key, bool text, ByteView data, Bytes* owned);
  void stage(std::size_t socket, const SocketAddress& remote, ByteView data, bool borrowed);
  void flush();
  std::optional<std::size_t> socketFor(const SocketAddress& local) const;
  void setConnection(ConnectionState s);
  void failConnection(std::string reason);
  void syncChannel(DataChannel::Impl& impl, const datachannel::ChannelInfo& info);

  Configuration config_;
  Random& random_;
  std::shared_ptr<const dtls::Certificate> certificate_;
  ice::Credentials localCredentials_;
  std::uint64_t sessionId_ = 0;
  std::uint64_t sessionVersion_ = 0;

  std::shared_ptr<net::Poller> poller_;
  std::vector<net::LocalSocket> sockets_;  // own sockets, or registrations on shared ones (udpMux)
  // TCP/TLS connections to TURN servers, opened on the agent's first transmit to each (see ice/agent.hpp).
  struct TurnStream {
    ice::TurnTransport transport;
    SocketAddress server;
    std::string host;  // from the URL: the TLS name to verify unless it is an IP literal
    std::optional<net::StreamClient> client;
    bool failed = false;
    bool watched = false, watchedWrite = false;  // the client's registration in poller_
  };
  std::vector<TurnStream> streams_;
  // ICE server URLs with a host name, being resolved (src/net/resolver.hpp) while gathering runs; each answer is
  // fed to the agent as one more server (ice::Agent::handleResolved).
  struct PendingName {
    std::uint64_t id;
    std::string url;
    IceServerUrl parsed;
    std::string username, credential;
  };
  std::unique_ptr<net::Resolver> resolver_;
  std::vector<PendingName> names_;
  std::optional<ice::Agent> agent_;
  std::optional<dtls::Endpoint> dtls_;
  std::optional<sctp::Association> sctp_;
  datachannel::ChannelManager channels_;
  std::unordered_map<datachannel::ChannelKey, std::weak_ptr<DataChannel::Impl>> channelImpls_;
  std::unordered_set<datachannel::ChannelKey> closedLocally_;  // closed without a stream reset (closeLocallyOnly)
  // Messages on the stream of a channel that is still closing here, waiting for it to close (see holdBack).
  struct HeldMessage {
    std::uint16_t stream;
    std::uint32_t ppid;
    Bytes payload;
  };
  std::vector<HeldMessage> held_;

  ConnectionState connection_ = ConnectionState::New;
  SignalingState signaling_ = SignalingState::Stable;
  bool closed_ = false;
  bool pending_ = false;  // an API call queued output that only poll() sends
  // DTLS records moved since the last poll(), and the last poll() that saw any: a connection whose DTLS has been
  // idle for kIdleRelease releases the endpoint's record buffers.
  bool dtlsTraffic_ = false;
  Timestamp lastDtlsTraffic_{};

  // Offer/answer.
  std::string createdType_, createdSdp_;  // what sessionDescriptionCreated delivered last
  bool haveLocal_ = false;
  bool isOfferer_ = false;
  std::optional<sdp::SessionDescription> remote_;
  std::size_t remoteSection_ = 0;
  std::string mid_ = "0";
  int mlineIndex_ = 0;
  std::uint16_t remoteSctpPort_ = 5000;
  bool dtlsClient_ = false;
  bool dtlsStarted_ = false;
  std::optional<ice::SelectedPair> selected_;
  Timestamp connectDeadline_ = kNever;

  std::vector<Signal> signals_;  // a vector: an empty one holds no memory (an idle connection's queue is empty)

  // Transmit staging, reused so the steady state allocates nothing per datagram.
  std::vector<Bytes> txPool_;
  std::size_t txPoolUsed_ = 0;
  std::vector<Staged> staged_;
  std::vector<net::Outgoing> outgoing_;
};

}  // namespace rtcpeer
