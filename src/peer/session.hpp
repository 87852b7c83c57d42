// One WebRTC connection attempt: the I/O shell around the sans-IO core (peer::Connection, connection.hpp). It owns
// the sockets, the poller registrations, the TURN TCP/TLS streams, the c-ares resolver and the clock; it feeds
// what they produce to the core and carries out the core's outputs (transmits in sendmmsg batches, stream opens,
// name lookups), and keeps the public DataChannel objects. PeerConnection owns one Session per initialize();
// DataChannels hold it weakly, so a channel outliving its connection is safe.
//
// Single-threaded and callback-free: state changes that the application must hear about are queued as Signals
// and handed to PeerConnection, which emits them at the end of poll().
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "common/time.hpp"
#include "net/resolver.hpp"
#include "net/stream.hpp"
#include "net/udp.hpp"
#include "net/udp_mux.hpp"
#include "peer/connection.hpp"
#include "rtcpeer/configuration.hpp"
#include "rtcpeer/data_channel.hpp"
#include "rtcpeer/peer_connection.hpp"

namespace rtcpeer {

/// The state behind one public DataChannel object.
class DataChannel::Impl {
 public:
  struct Packet {
    Bytes data;
    bool text = false;
  };

  std::weak_ptr<class Session> session;
  std::weak_ptr<struct ChannelReleases> releases;  // the session's hand-over box for ~DataChannel (any thread)
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
  /// What the inbox costs against the association's receive window (Connection::readCost per message).
  std::size_t unreadCost = 0;
  bool lastWasString = false;
  std::string lastError;

  Error failWith(Error code, std::string reason) {
    lastError = std::move(reason);
    return code;
  }
};

/// Channels whose last public reference was dropped. ~DataChannel may run on any thread (a shared_ptr's last copy
/// goes wherever the application's objects go), so it only hands the channel's state over here, under the mutex;
/// the connection's next poll() closes the channel on the polling thread. The one object shared across threads.
struct ChannelReleases {
  std::mutex mutex;
  std::vector<std::shared_ptr<DataChannel::Impl>> released;
  bool closed = false;           // the session closed: nothing is kept (the channel's state dies with the caller's)
  std::atomic<bool> any{false};  // read without the mutex by nextDeadline() and poll()

  void post(std::shared_ptr<DataChannel::Impl> impl) {
    std::lock_guard lock(mutex);
    if (closed) return;
    released.push_back(std::move(impl));
    any.store(true, std::memory_order_release);
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
  [[nodiscard]] ConnectionState connectionState() const noexcept { return core_->connectionState(); }
  [[nodiscard]] SignalingState signalingState() const noexcept { return core_->signalingState(); }
  /// The core's figures, and the shared port's (udpMux).
  [[nodiscard]] ConnectionStats stats() const;

  /// Signals queued since the last call, oldest first (the caller emits them).
  std::vector<Signal> takeSignals() { return std::exchange(signals_, {}); }
  [[nodiscard]] bool hasSignals() const noexcept { return !signals_.empty(); }

  // DataChannel entry points.
  Error send(DataChannel::Impl& channel, ByteView message, bool text);
  void closeChannel(DataChannel::Impl& channel);
  void releaseChannel(datachannel::ChannelKey key);
  /// Closes the channels whose last reference was dropped since the last poll() (ChannelReleases).
  void closeReleased();
  /// A buffer the application handed back through getPacket(): reused for a later received message.
  void recycle(Bytes buffer) { core_->recycle(std::move(buffer)); }
  [[nodiscard]] std::size_t bufferedAmount(const DataChannel::Impl& channel) const {
    return core_->bufferedAmount(channel.key);
  }
  /// Receive back-pressure: a message's cost against the receive window while it waits in an inbox, and its
  /// release when read or dropped (Connection::readCost).
  static std::size_t readCost(const Bytes& message) noexcept { return peer::Connection::readCost(message); }
  void released(std::size_t cost) {
    if (!closed_) core_->released(cost);
  }
  [[nodiscard]] std::size_t remoteMaxMessageSize() const noexcept { return core_->remoteMaxMessageSize(); }

 private:
  // One datagram waiting for flush(): a view into the core's transmit buffers, valid until the core's next Flush.
  struct Staged {
    std::size_t socket;
    SocketAddress remote;
    ByteView data;
  };

  Session(std::unique_ptr<peer::Connection> core, std::shared_ptr<net::Poller> poller);

  // Driving the core: feed it the clock, carry out its outputs until its next Timeout.
  void drive(Timestamp now);
  void handleOutput(peer::Output& o);
  void handleChannelOutput(peer::ChannelKey key, const std::string& reason, bool received);
  void syncChannel(DataChannel::Impl& impl);

  // Sockets (UDP): binding, receiving, staging and one sendmmsg per socket and batch.
  Outcome bindSockets(Timestamp now);
  void followUfrag();
  void receiveAll(Timestamp now);
  void stage(const SocketAddress& local, const SocketAddress& remote, ByteView data);
  void flush();
  std::optional<std::size_t> socketFor(const SocketAddress& local) const;

  // TURN TCP/TLS streams and ICE server names.
  void openStream(const peer::out::OpenStream& o);
  void writeStream(ice::TurnTransport transport, const SocketAddress& server, ByteView data);
  void serviceStreams(Timestamp now);
  void watchStreams();
  void resolve(const peer::out::Resolve& r);
  void serviceResolver(Timestamp now);

  std::unique_ptr<peer::Connection> core_;
  std::shared_ptr<net::Poller> poller_;
  std::vector<net::LocalSocket> sockets_;  // own sockets, or registrations on shared ones (udpMux)
  bool anyShared_ = false;                  // one of sockets_ is on a shared port
  std::string boundUfrag_;  // the ICE ufrag the shared sockets route to this connection (followUfrag)
  struct TurnStream {
    ice::TurnTransport transport;
    SocketAddress server;
    std::optional<net::StreamClient> client;
    bool watched = false, watchedWrite = false;  // the client's registration in poller_
  };
  std::vector<TurnStream> streams_;
  std::unique_ptr<net::Resolver> resolver_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> names_;  // (resolver query id, core Resolve id)
  std::unordered_map<peer::ChannelKey, std::weak_ptr<DataChannel::Impl>> channelImpls_;
  std::shared_ptr<ChannelReleases> releases_ = std::make_shared<ChannelReleases>();
  bool closed_ = false;

  std::vector<Signal> signals_;  // a vector: an empty one holds no memory (an idle connection's queue is empty)

  // Transmit staging, reused so the steady state allocates nothing per datagram.
  std::vector<Staged> staged_;
  std::vector<net::Outgoing> outgoing_;
};

}  // namespace rtcpeer
