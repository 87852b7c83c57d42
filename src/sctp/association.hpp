// An SCTP association for WebRTC data channels (RFC 9260 over DTLS per RFC 8261), sans-IO: the integrator puts
// each packet from pollTransmit() into one DTLS record and feeds every decrypted record to handleInput().
//
//   Association a(options, random);
//   a.connect(now);                               // both WebRTC peers do this (simultaneous open is handled)
//   loop: a.handleInput(record, now) for each received record;
//         while (auto p = a.pollTransmit(now)) dtls.send(*p);
//         if (now >= a.nextDeadline()) a.handleTimeout(now);
//         while (auto e = a.pollEvent()) ...; while (auto m = a.pollMessage()) ...;
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/random.hpp"
#include "common/result.hpp"
#include "common/time.hpp"
#include "sctp/packet/packet.hpp"
#include "sctp/packet/parameters.hpp"
#include "sctp/rx/data_tracker.hpp"
#include "sctp/rx/reassembly.hpp"
#include "sctp/tx/congestion_control.hpp"
#include "sctp/tx/retransmit_queue.hpp"
#include "sctp/tx/rto.hpp"
#include "sctp/tx/send_queue.hpp"
#include "sctp/state_cookie.hpp"

namespace rtcpeer::sctp {

struct Options {
  std::uint16_t localPort = 5000;
  std::uint16_t remotePort = 5000;
  /// Largest SCTP packet. WebRTC keeps UDP payloads at 1200 bytes; a DTLS 1.2 record with AES-GCM costs
  /// 13 (header) + 8 (explicit nonce) + 16 (tag) = 37 bytes, leaving 1163, rounded down to a multiple of 4.
  std::size_t mtu = 1160;
  std::size_t maxMessageSize = 256 * 1024;
  std::uint32_t receiveWindow = 4 * 1024 * 1024;
  /// send() fails once this many bytes wait in the send queue (backpressure for the data-channel layer).
  std::size_t maxSendBuffer = 16 * 1024 * 1024;
  /// The DTLS handshake already measured the path, so the first RTO can be far below RFC 9260's 1 s.
  Duration rtoInitial{200'000};
  Duration rtoMin{100'000};
  Duration rtoMax{8'000'000};
  Duration delayedAckTimeout{20'000};
  Duration heartbeatInterval{30'000'000};  // 0 disables heartbeats
  Duration cookieLifetime{60'000'000};
  int maxInitRetransmits = 8;
  /// The handshake (INIT to COOKIE-ACK) ends Aborted, with a reason saying so, once the peer has been silent this
  /// long during it: the bound starts at connect() and restarts at every packet from the peer (and at every
  /// notePeerAlive()); 0 leaves maxInitRetransmits as the only bound. A data-channel peer whose DTLS is up but whose
  /// SCTP never answers (or failed silently) is then found within seconds, not after ~36 s of backed-off INITs
  /// (docs/INTEROP.md, "fail fast"), while a live peer that is merely slow (a process polling thousands of
  /// connections in turn) is never failed by it.
  Duration handshakeTimeout{0};
  int maxRetransmits = 10;
  std::uint16_t streams = 65535;
  std::size_t initialCwndMtus = 10;
  /// Max.Burst (RFC 9260 6.1 D; 4 is the value section 16 recommends): a sending opportunity (the handleInput(),
  /// handleTimeout() and send() calls since the previous pollTransmit()) may add at most this many MTUs of new
  /// DATA to what was in flight when it began. So a SACK refills what it acknowledged plus Max.Burst packets, and
  /// a window that grew or reopened is used up over several round trips instead of in one burst. 0 = no limit.
  std::size_t maxBurst = 4;
  /// Bbr keeps throughput on long, lossy paths; Reno is the RFC 9260 section 7 baseline (src/sctp/README.md).
  CongestionControl congestionControl = CongestionControl::Bbr;
  bool enableIData = false;       // RFC 8260 interleaving, used if the peer supports it too
  bool enableZeroChecksum = false;  // RFC 9653: accept zero checksums (DTLS already authenticates)
};

struct SendOptions {
  bool unordered = false;
  std::optional<int> maxRetransmits;
  std::optional<Duration> lifetime;
};

enum class State : std::uint8_t {
  Closed, CookieWait, CookieEchoed, Established, ShutdownPending, ShutdownSent, ShutdownReceived, ShutdownAckSent
};
const char* toString(State s) noexcept;

struct Event {
  enum class Type : std::uint8_t {
    Connected,   // the association is established: send() now transmits
    Restarted,   // the peer restarted the association (RFC 9260 5.2.4 A); queued data was discarded
    Closed,      // graceful shutdown completed
    Aborted,     // ABORT received or sent, or a failure (reason says which)
  };
  Type type;
  std::string reason;
  /// Aborted by the peer's application (an ABORT carrying a User-Initiated Abort cause, RFC 9260 3.3.10.12, or
  /// no cause at all): browsers end a closed RTCPeerConnection the first way, aiortc the second, so the host may
  /// treat it as a remote close.
  bool peerUserAbort = false;
};

/// Stream reset outcomes (RFC 6525), drained with pollStreamReset().
struct StreamReset {
  /// true: the peer reset its outgoing streams (e.g. it closed data channels), our inbound side restarted.
  /// false: our resetStreams() request completed; the streams can be reused (unless `refused`).
  bool incoming = false;
  bool refused = false;
  std::vector<std::uint16_t> streams;  // empty = all streams
};

struct Metrics {
  Duration srtt{0};
  Duration rto{0};
  std::size_t cwnd = 0;
  std::size_t ssthresh = 0;
  std::size_t peerRwnd = 0;
  std::size_t bytesInFlight = 0;
  std::size_t receiveBuffered = 0;  // what our a_rwnd subtracts (0 once every message was popped and read)
  std::uint64_t packetsSent = 0, packetsReceived = 0;
  std::uint64_t dataChunksSent = 0, dataChunksReceived = 0;
  std::uint64_t retransmissions = 0, fastRetransmits = 0, t3Expirations = 0;
  std::uint64_t messagesSent = 0, messagesReceived = 0;
  std::uint64_t bytesSent = 0, bytesReceived = 0;  // user payload
  std::uint64_t duplicateTsns = 0;
};

class Association {
 public:
  Association(Options options, Random& random);
  ~Association();
  Association(const Association&) = delete;
  Association& operator=(const Association&) = delete;

  /// Starts the handshake (sends INIT). Without connect() the association still answers an INIT (passive).
  void connect(Timestamp now);
  void handleInput(ByteView packet, Timestamp now);
  void handleTimeout(Timestamp now);
  [[nodiscard]] Timestamp nextDeadline() const noexcept;
  /// The next packet to send, valid until the next call on this object; nothing when idle or blocked.
  std::optional<ByteView> pollTransmit(Timestamp now);

  /// Queues a message (1 byte .. maxMessageSize). Allowed before the association is up; fails once closing.
  Status send(std::uint16_t stream, std::uint32_t ppid, ByteView payload, const SendOptions& options,
              Timestamp now);
  std::optional<Event> pollEvent();
  std::optional<Message> pollMessage();
  /// Hands back a delivered message's buffer (or any spent one) for reuse by the reassembly.
  void recycle(Bytes buffer) { reasm_.recycle(std::move(buffer)); }
  /// Receive back-pressure: bytes of delivered messages the application has not read yet. They count against
  /// the advertised receive window like bytes still in reassembly, so a reader that stops closes the window.
  /// releaseUnread() sends a window update once reading reopened a nearly closed window (RFC 9260 6.2).
  void holdUnread(std::size_t bytes) noexcept { unread_ += bytes; }
  void releaseUnread(std::size_t bytes) noexcept;
  [[nodiscard]] std::size_t unreadBytes() const noexcept { return unread_; }
  /// For an idle association: frees the packet scratch buffers and the recycled message buffers (up to 16 of up
  /// to maxMessageSize each after a bulk transfer), and empties this thread's pool of freed send payloads
  /// (Payload::trimPool); they are allocated again when traffic resumes.
  void releaseBuffers();
  std::optional<StreamReset> pollStreamReset();

  [[nodiscard]] std::size_t bufferedAmount(std::uint16_t stream) const noexcept;
  [[nodiscard]] std::size_t totalBufferedAmount() const noexcept;
  /// Resets our outgoing streams (RFC 6525 Outgoing SSN Reset Request; what closing a data channel does, RFC 8831
  /// 6.7). Data already queued on them is sent first; send() on them fails until the StreamReset outcome.
  Status resetStreams(std::span<const std::uint16_t> streams, Timestamp now);
  /// Graceful close (RFC 9260 9.2): queued data is still delivered first.
  void shutdown(Timestamp now);
  void abort(std::string reason, Timestamp now);
  [[nodiscard]] State state() const noexcept { return state_; }
  /// The layer below heard from the peer (e.g. a DTLS record): during the handshake, Options::handshakeTimeout
  /// counts from `now` again.
  void notePeerAlive(Timestamp now) noexcept {
    if (handshakeDeadline_ != kNever && opts_.handshakeTimeout.count() > 0)
      handshakeDeadline_ = std::max(handshakeDeadline_, now + opts_.handshakeTimeout);
  }
  [[nodiscard]] Metrics metrics() const;
  /// Streams negotiated in each direction (0 before the handshake).
  [[nodiscard]] std::uint16_t outboundStreams() const noexcept { return outStreams_; }
  [[nodiscard]] std::uint16_t inboundStreams() const noexcept { return inStreams_; }
  [[nodiscard]] const Options& options() const noexcept { return opts_; }
  /// Extensions the handshake settled on (false before it): RFC 8260 I-DATA, and RFC 9653 zero checksums on
  /// what we send (the peer accepts them).
  [[nodiscard]] bool interleaving() const noexcept { return peerIData_; }
  [[nodiscard]] bool sendsZeroChecksum() const noexcept { return sendZeroChecksum_; }

 private:
  struct Timer {
    Timestamp deadline = kNever;
    int count = 0;  // expirations since last reset
  };

  // handshake.cpp
  void sendInit(Timestamp now);
  void handleInit(const CommonHeader& h, const RawChunk& c, Timestamp now);
  void handleInitAck(const RawChunk& c, Timestamp now);
  void handleCookieEcho(const CommonHeader& h, const RawChunk& c, Timestamp now);
  void handleCookieAck(Timestamp now);
  void establish(const CookieState& s, Timestamp now, bool restart);
  void handleAbort(const CommonHeader& h, const RawChunk& c);
  void handleShutdown(const RawChunk& c, Timestamp now);
  void handleShutdownAck();
  void handleShutdownComplete(const CommonHeader& h, const RawChunk& c);
  void maybeProgressShutdown(Timestamp now);
  void terminate(Event::Type type, std::string reason);
  void onT1(Timestamp now);
  void onT2(Timestamp now);

  // data.cpp
  void handleData(const RawChunk& c);
  void handleSack(const RawChunk& c, Timestamp now);
  void handleForwardTsn(const RawChunk& c);
  void onT3(Timestamp now);
  std::optional<ByteView> buildDataPacket(Timestamp now);
  [[nodiscard]] std::uint32_t advertisedWindow() const noexcept;
  [[nodiscard]] std::size_t receiveBuffered() const noexcept {
    return reasm_.bufferedBytes() + deferredBytes_ + unread_;
  }
  void maybeWindowUpdate() noexcept;
  [[nodiscard]] bool forwardTsnNeeded() const noexcept;

  // reconfig.cpp
  void handleReConfig(const RawChunk& c, Timestamp now);
  void maybeSendReconfig(Timestamp now);
  void sendReconfigRequest(Timestamp now);
  void performIncomingReset();
  [[nodiscard]] bool deferredByReset(const DataChunk& d) const noexcept;
  void onReconfigTimer(Timestamp now);
  void sendReconfigResponse(std::uint32_t seq, std::uint32_t result);
  void flushReconfigResponse();
  bool acceptPeerRequest(std::uint32_t seq);
  void answerPeerRequest(std::uint32_t seq, std::uint32_t result);
  void handleIncomingResetRequest(const IncomingResetRequest& req, Timestamp now);
  [[nodiscard]] bool streamResetting(std::uint16_t stream) const noexcept;

  // association.cpp
  void processChunks(const CommonHeader& h, ByteView packet, Timestamp now);
  void queueControl(ByteView packet);
  /// Starts a control packet to the peer (vtag = peer tag unless given) in ctrlBuf_.
  PacketBuilder controlPacket(std::uint32_t vtag);
  void sendAbortToPeer(std::uint32_t vtag, bool tBit, std::uint16_t cause, std::string_view info);
  void sendHeartbeatAck(const RawChunk& c);
  void reportUnknownChunk(const RawChunk& c);
  bool checksumOk(const CommonHeader& h, ByteView packet) const;
  void emit(Event::Type type, std::string reason = {});
  void clearData();
  /// Marks a sending opportunity (Options::maxBurst): the first event since the last pollTransmit() fixes the cap.
  void beginOpportunity() noexcept;

  Options opts_;
  Random& rng_;
  State state_ = State::Closed;
  bool connectCalled_ = false;
  bool terminated_ = false;  // closed after having been open (or failed): inputs are ignored

  std::uint32_t localTag_ = 0;
  std::uint32_t peerTag_ = 0;
  std::uint32_t localInitialTsn_ = 0;
  std::uint16_t outStreams_ = 0;
  std::uint16_t inStreams_ = 0;
  bool peerIData_ = false;       // both sides support I-DATA: use it
  bool peerForwardTsn_ = false;
  bool peerReconfig_ = false;
  bool sendZeroChecksum_ = false;  // the peer accepts zero checksums (RFC 9653)
  std::uint8_t cookieSecret_[32]{};

  Bytes cookieEcho_;     // the cookie we echo while in COOKIE-ECHOED
  CookieState pending_;  // what the peer's INIT-ACK told us, applied on COOKIE-ACK
  Timer t1_, t2_, t3_;
  Timestamp handshakeDeadline_ = kNever;  // Options::handshakeTimeout, while in COOKIE-WAIT/COOKIE-ECHOED
  Timestamp delayedAck_ = kNever;
  Timestamp heartbeatAt_ = kNever;
  int heartbeatOutstanding_ = 0;
  int errorCount_ = 0;  // consecutive retransmission timeouts (RFC 9260 8.1)

  RtoEstimator rto_;
  SendQueue sendQueue_;
  RetransmitQueue rtx_;
  std::unique_ptr<CongestionController> cc_;
  DataTracker tracker_;
  Reassembly reasm_;
  std::size_t peerRwnd_ = 0;
  std::uint32_t lastAdvertisedRwnd_ = 0;
  std::size_t unread_ = 0;  // holdUnread() - releaseUnread()
  bool fastRetransmitNow_ = false;  // one packet of fast retransmissions may exceed cwnd (RFC 9260 7.2.4)
  bool forwardTsnPending_ = false;  // a FORWARD-TSN should go out with the next packet (RFC 3758 3.5)
  bool opportunityOpen_ = false;    // an event happened since the last pollTransmit()
  std::size_t burstCap_ = 0;        // new DATA stops at this much in flight (Options::maxBurst)
  std::vector<ForwardTsnChunk::Skip> skips_;  // scratch for FORWARD-TSN entries

  // Stream reset (RFC 6525). Request sequence numbers start at each side's initial TSN (5.1.2 / 4.1).
  std::vector<std::uint16_t> resetPending_;   // requested by the user, not yet sent
  std::vector<std::uint16_t> resetInFlight_;  // in our outstanding request
  bool resetOutstanding_ = false;
  std::uint32_t nextRequestSeq_ = 0;
  std::uint32_t lastPeerRequestSeq_ = 0;  // the last peer request we answered
  std::uint32_t lastPeerResult_ = 0;      // and how (repeated if the peer retransmits it)
  /// A Re-configuration Response not yet sent (seq, result): it leaves with the next pollTransmit(), or together
  /// with our own Outgoing SSN Reset Request if one is made before that (sendReconfigRequest).
  std::optional<std::pair<std::uint32_t, std::uint32_t>> pendingResponse_;
  /// lastPeerResult_ of an Incoming SSN Reset Request answered by an Outgoing SSN Reset Request of ours.
  static constexpr std::uint32_t kAnsweredByRequest = 0xFFFFFFFF;
  struct IncomingReset {
    std::uint32_t seq;
    std::uint32_t lastTsn;
    std::vector<std::uint16_t> streams;
  };
  std::optional<IncomingReset> incomingReset_;  // waiting for its last TSN to arrive
  /// DATA past that last TSN on the streams being reset, held until the reset is performed (RFC 6525 5.2.2 E2):
  /// their sequence numbers already start again at 0. Bounded by the receive window like reassembly.
  struct DeferredChunk {
    std::uint64_t tsn64;
    DataChunk chunk;  // payload points into `data`
    Bytes data;
  };
  std::vector<DeferredChunk> deferred_;
  std::size_t deferredBytes_ = 0;
  Timer reconfigTimer_;

  std::deque<Bytes> control_;  // ready control packets (handshake, ABORT, heartbeat, ...)
  Bytes ctrlBuf_;              // scratch for building a control packet
  Bytes txBuf_;                // the packet last returned by pollTransmit (reused)
  std::deque<Event> events_;
  std::deque<StreamReset> resets_;
  Metrics metrics_;
};

}  // namespace rtcpeer::sctp
