#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "rtcpeer/configuration.hpp"
#include "rtcpeer/data_channel.hpp"
#include "rtcpeer/error.hpp"
#include "rtcpeer/stats.hpp"

namespace rtcpeer {

/// Godot WebRTCPeerConnection.ConnectionState: derived from ICE, DTLS and SCTP together.
enum class ConnectionState : int { New = 0, Connecting = 1, Connected = 2, Disconnected = 3, Failed = 4, Closed = 5 };

/// Godot WebRTCPeerConnection.GatheringState.
enum class GatheringState : int { New = 0, Gathering = 1, Complete = 2 };

/// Godot WebRTCPeerConnection.SignalingState (W3C RTCSignalingState, JSEP RFC 8829 §3.2).
enum class SignalingState : int {
  Stable = 0,
  HaveLocalOffer = 1,
  HaveRemoteOffer = 2,
  HaveLocalPranswer = 3,
  HaveRemotePranswer = 4,
  Closed = 5,
};

/// A WebRTC connection to one remote peer, carrying data channels (Godot WebRTCPeerConnection).
///
/// Usable right after construction (as if initialize({}) had been called). rtcpeer starts no thread; the
/// application calls poll() often (or wait() then poll()) and every signal fires inside poll(). Nothing throws;
/// every failing call returns an Error and lastError() says why.
///
/// Threads: separate PeerConnections may be used on separate threads at the same time (they share only the log
/// sink, which serializes itself, see rtcpeer/log.hpp). One PeerConnection and its DataChannels belong to one
/// thread at a time: every call on them must come from the thread that polls the connection (the connection may
/// move to another thread between calls, with the application providing the happens-before, e.g. a mutex or a
/// join). The one exception: the last std::shared_ptr<DataChannel> may be dropped on any thread (see
/// ~DataChannel). Callbacks run on the polling thread, inside poll().
///
/// Lifetime: a callback may call any method of this object, including close() and initialize() (the signals
/// still queued for the closed connection are dropped), and may destroy it (`delete`, or reset the owning smart
/// pointer): the callback returns normally, no further signal fires, and poll() returns Ok without touching the
/// destroyed object. DataChannels may outlive their PeerConnection (they read Closed; unread messages stay
/// readable).
///
/// Flow: offerer: createDataChannel(), createOffer() -> sessionDescriptionCreated("offer", sdp) ->
/// setLocalDescription("offer", sdp) (gathering starts, iceCandidateCreated fires) and send sdp to the peer.
/// Answerer: setRemoteDescription("offer", sdp) -> sessionDescriptionCreated("answer", sdp) ->
/// setLocalDescription("answer", sdp). Offerer: setRemoteDescription("answer", sdp). Both: addIceCandidate()
/// for each candidate the peer signals.
class PeerConnection {
 public:
  using SessionDescriptionCallback = std::function<void(const std::string& type, const std::string& sdp)>;
  using IceCandidateCallback = std::function<void(const std::string& media, int index, const std::string& name)>;
  using DataChannelCallback = std::function<void(std::shared_ptr<DataChannel>)>;

  PeerConnection();
  ~PeerConnection();  ///< closes the connection; allowed inside this object's own callbacks
  PeerConnection(const PeerConnection&) = delete;
  PeerConnection& operator=(const PeerConnection&) = delete;

  /// Closes any previous connection (its channels become Closed, its queued signals are dropped) and starts
  /// afresh in ConnectionState::New with `config`. InvalidParameter if the configuration is invalid.
  Error initialize(const Configuration& config = {});

  /// A new channel (nullptr on failure, see lastError()). Godot rules: label and protocol at most 65535
  /// bytes; see DataChannelInit::validate(). Allowed before and after the connection is up.
  std::shared_ptr<DataChannel> createDataChannel(std::string_view label, const DataChannelInit& init = {});

  /// Creates an offer, delivered through sessionDescriptionCreated("offer", ...) in a later poll().
  /// Refused (Unconfigured) unless at least one data channel exists; Failed unless signaling is Stable.
  Error createOffer();
  /// Applies our own description ("offer", "answer" or "pranswer") as created by this object; starts
  /// gathering. Per JSEP the SDP must be the one sessionDescriptionCreated delivered.
  Error setLocalDescription(std::string_view type, std::string_view sdp);
  /// Applies the peer's description. For "offer", the answer follows through sessionDescriptionCreated.
  /// Malformed SDP: InvalidParameter, with the offending line in lastError().
  Error setRemoteDescription(std::string_view type, std::string_view sdp);
  /// Adds a candidate the peer signalled: `media` is the mid, `index` the m-line index (used when the mid is
  /// empty), `name` the "candidate:..." line (an "a=" prefix is tolerated; an empty name means
  /// end-of-candidates). Needs a remote description first.
  Error addIceCandidate(std::string_view media, int index, std::string_view name);

  /// Does all pending network work (receive, timers, send) without blocking, then fires queued signals.
  /// Unconfigured after close() until initialize(). With Configuration::udpMux, Failed (lastError() says why)
  /// when called from another thread than the one using the shared port: connections sharing a port are all
  /// used from one thread.
  Error poll();
  /// Sleeps until a datagram arrives for this connection, its next deadline passes, or `timeout` elapses,
  /// whichever is first; call poll() afterwards. Ok on wake-up; Unconfigured if closed.
  Error wait(std::chrono::milliseconds timeout);
  /// When poll() next has timer work to do (time_point::max() if none). For applications with their own loop.
  std::chrono::steady_clock::time_point nextDeadline() const;
  /// A descriptor (an epoll set holding this connection's sockets) that is readable whenever poll() has received
  /// data to handle, so an application can wait on many connections and its own descriptors in one poll/epoll
  /// loop. Call poll() when it is readable *and* when nextDeadline() passes (timers, and work queued by API
  /// calls, which makes nextDeadline() "now"). Never read from it. With Configuration::udpMux it holds the
  /// wake-up of the connection's queue of datagrams other connections' polls received for it, and at times the
  /// shared socket. The same descriptor for the whole life of this object, across initialize() and close(); -1
  /// only if the system refused to create it (see wait()).
  /// Descriptors: a connection holds this one and a UDP socket per local address it binds (with udpMux, only
  /// this one; TURN over TCP/TLS and DNS lookups add theirs while in use). When the process runs out of them
  /// (RLIMIT_NOFILE, EMFILE), rtcpeer raises the soft limit to the hard limit, a process-wide change as Go's
  /// runtime makes at start-up, and tries once more; at the hard limit, lastError() names both limits.
  int fileDescriptor() const;

  /// Closes the connection and every data channel. The object is unusable until initialize().
  void close();

  ConnectionState connectionState() const;
  /// Changes only inside poll(), in order with the candidate signals: Gathering once gathering starts (before
  /// the first iceCandidateCreated), Complete from the end-of-candidates signal (empty name) on.
  GatheringState gatheringState() const;
  SignalingState signalingState() const;
  /// A snapshot for diagnostics: the selected candidate pair, DTLS role and cipher, SCTP round-trip time,
  /// windows, counters and negotiated extensions (see rtcpeer/stats.hpp). Not in Godot; all zero/empty before
  /// the transports exist and after close().
  ConnectionStats stats() const;
  /// Why the last call failed; cleared by a call that succeeds.
  const std::string& lastError() const;

  /// Signals; each fires only inside poll(), in the order the events happened.
  void onSessionDescriptionCreated(SessionDescriptionCallback callback);
  void onIceCandidateCreated(IceCandidateCallback callback);
  void onDataChannelReceived(DataChannelCallback callback);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace rtcpeer
