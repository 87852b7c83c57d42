// The association's public surface: input dispatch, timers, the transmit drain and the user commands. The
// handshake/teardown state machine is in handshake.cpp, the data path in data.cpp.
#include "sctp/association.hpp"

#include "common/log.hpp"
#include "sctp/packet/chunks.hpp"
#include "sctp/packet/parameters.hpp"

namespace rtcpeer::sctp {

const char* toString(State s) noexcept {
  switch (s) {
    case State::Closed: return "closed";
    case State::CookieWait: return "cookie-wait";
    case State::CookieEchoed: return "cookie-echoed";
    case State::Established: return "established";
    case State::ShutdownPending: return "shutdown-pending";
    case State::ShutdownSent: return "shutdown-sent";
    case State::ShutdownReceived: return "shutdown-received";
    case State::ShutdownAckSent: return "shutdown-ack-sent";
  }
  return "?";
}

Association::Association(Options options, Random& random)
    : opts_(options),
      rng_(random),
      rto_(options.rtoInitial, options.rtoMin, options.rtoMax),
      reasm_(options.maxMessageSize) {
  rng_.fill(cookieSecret_);
}

Association::~Association() = default;

void Association::connect(Timestamp now) {
  if (state_ != State::Closed || terminated_) return;
  connectCalled_ = true;
  if (opts_.handshakeTimeout.count() > 0) handshakeDeadline_ = now + opts_.handshakeTimeout;
  sendInit(now);
}

bool Association::checksumOk(const CommonHeader& h, ByteView packet) const {
  if (opts_.enableZeroChecksum && h.checksum == 0) return true;  // RFC 9653: DTLS already protects the packet
  CommonHeader tmp;
  return parseCommonHeader(packet, tmp, true).ok();
}

void Association::handleInput(ByteView packet, Timestamp now) {
  if (terminated_) return;
  beginOpportunity();
  CommonHeader h;
  if (!parseCommonHeader(packet, h, false) || !checksumOk(h, packet)) return;
  if (h.dstPort != opts_.localPort || h.srcPort != opts_.remotePort) return;
  ++metrics_.packetsReceived;
  notePeerAlive(now);  // a valid packet (checksum, ports) from a live peer: the handshake bound is for silence
  processChunks(h, packet, now);
  if (tracker_.sackPending() && !tracker_.sackDue() && delayedAck_ == kNever)
    delayedAck_ = now + opts_.delayedAckTimeout;
}

void Association::processChunks(const CommonHeader& h, ByteView packet, Timestamp now) {
  ChunkIterator it(packet);
  RawChunk c;
  bool first = true;
  bool hadData = false;
  while (it.next(c)) {
    // Verification tag rules (RFC 9260 8.5, 8.5.1). INIT, COOKIE-ECHO, ABORT and SHUTDOWN-COMPLETE check
    // their own; everything else must carry our tag.
    switch (c.type) {
      case ChunkType::kInit:
        if (!first) return;  // INIT must be alone in its packet (RFC 9260 6.10)
        handleInit(h, c, now);
        return;
      case ChunkType::kCookieEcho:
        handleCookieEcho(h, c, now);
        break;
      case ChunkType::kAbort:
        handleAbort(h, c);
        return;
      case ChunkType::kShutdownComplete:
        handleShutdownComplete(h, c);
        return;
      default:
        if (state_ == State::Closed || h.verificationTag != localTag_) return;
        switch (c.type) {
          case ChunkType::kData:
          case ChunkType::kIData:
            handleData(c);
            hadData = true;
            break;
          case ChunkType::kSack:
            handleSack(c, now);
            break;
          case ChunkType::kInitAck:
            handleInitAck(c, now);
            break;
          case ChunkType::kCookieAck:
            handleCookieAck(now);
            break;
          case ChunkType::kHeartbeat:
            sendHeartbeatAck(c);
            break;
          case ChunkType::kHeartbeatAck:
            heartbeatOutstanding_ = 0;
            errorCount_ = 0;
            break;
          case ChunkType::kShutdown:
            handleShutdown(c, now);
            break;
          case ChunkType::kShutdownAck:
            handleShutdownAck();
            break;
          case ChunkType::kError:
            if (auto e = CauseChunk::parse(c))
              RTCPEER_LOG(Debug, "sctp", "peer reported: " << describeCauses(e->causes));
            break;
          case ChunkType::kForwardTsn:
          case ChunkType::kIForwardTsn:
            handleForwardTsn(c);
            break;
          case ChunkType::kReConfig:
            handleReConfig(c, now);
            break;
          default: {
            UnknownChunkAction a = unknownChunkAction(c.type);
            if (a.report) reportUnknownChunk(c);
            if (a.stop) return;
          }
        }
    }
    if (terminated_) return;
    first = false;
  }
  if (hadData) {
    tracker_.onDataPacket();
    if (incomingReset_ && tsnLessEq(incomingReset_->lastTsn, tracker_.cumTsn())) performIncomingReset();
    if (state_ == State::Established || state_ == State::ShutdownPending || state_ == State::ShutdownSent)
      heartbeatAt_ = opts_.heartbeatInterval.count() ? now + opts_.heartbeatInterval : kNever;
  }
}

void Association::handleTimeout(Timestamp now) {
  if (terminated_) return;
  beginOpportunity();
  if (handshakeDeadline_ <= now && (state_ == State::CookieWait || state_ == State::CookieEchoed)) {
    terminate(Event::Type::Aborted,
              "handshake failed: the peer did not complete the SCTP handshake within " +
                  std::to_string(opts_.handshakeTimeout.count() / 1000) + " ms (no " +
                  (state_ == State::CookieWait ? "INIT-ACK" : "COOKIE-ACK") + ")");
    return;
  }
  if (t1_.deadline <= now) onT1(now);
  if (t2_.deadline <= now && !terminated_) onT2(now);
  if (t3_.deadline <= now && !terminated_) onT3(now);
  if (reconfigTimer_.deadline <= now && !terminated_) onReconfigTimer(now);
  if (peerForwardTsn_) rtx_.expire(now);  // the FORWARD-TSN goes out with the next packet
  if (delayedAck_ <= now) {
    delayedAck_ = kNever;
    if (tracker_.sackPending()) tracker_.requestImmediateSack();
  }
  if (heartbeatAt_ <= now && !terminated_) {
    if (heartbeatOutstanding_ > opts_.maxRetransmits) {
      sendAbortToPeer(peerTag_, false, CauseCode::kProtocolViolation, "heartbeats unanswered");
      terminate(Event::Type::Aborted, "peer unreachable: heartbeats unanswered");
      return;
    }
    PacketBuilder b = controlPacket(peerTag_);
    std::uint8_t info[8];
    storeBe32(info, static_cast<std::uint32_t>(toMicros(now) >> 32));
    storeBe32(info + 4, static_cast<std::uint32_t>(toMicros(now)));
    HeartbeatChunk::write(b.writer(), false, ByteView(info, 8));
    queueControl(b.finish(!sendZeroChecksum_));
    ++heartbeatOutstanding_;
    heartbeatAt_ = now + opts_.heartbeatInterval + rto_.rto();
  }
}

Timestamp Association::nextDeadline() const noexcept {
  if (terminated_) return kNever;
  Timestamp t = earliest(earliest(t1_.deadline, t2_.deadline), earliest(t3_.deadline, delayedAck_));
  if (state_ == State::CookieWait || state_ == State::CookieEchoed) t = earliest(t, handshakeDeadline_);
  t = earliest(t, peerForwardTsn_ ? rtx_.nextExpiry() : kNever);
  return earliest(earliest(t, heartbeatAt_), reconfigTimer_.deadline);
}

std::optional<ByteView> Association::pollTransmit(Timestamp now) {
  opportunityOpen_ = false;
  flushReconfigResponse();
  if (!control_.empty()) {
    txBuf_.swap(control_.front());
    control_.pop_front();
    ++metrics_.packetsSent;
    return ByteView(txBuf_);
  }
  if (terminated_) return std::nullopt;
  switch (state_) {
    case State::Established:
    case State::ShutdownPending:
    case State::ShutdownSent:
    case State::ShutdownReceived:
      return buildDataPacket(now);
    default:
      return std::nullopt;
  }
}

Status Association::send(std::uint16_t stream, std::uint32_t ppid, ByteView payload, const SendOptions& options,
                         Timestamp now) {
  if (terminated_ || (state_ != State::Closed && state_ != State::CookieWait && state_ != State::CookieEchoed &&
                      state_ != State::Established))
    return ::rtcpeer::fail("sctp: association is closing or closed");
  if (payload.empty()) return ::rtcpeer::fail("sctp: empty messages are not allowed");
  if (payload.size() > opts_.maxMessageSize) return ::rtcpeer::fail("sctp: message exceeds the maximum message size");
  if (outStreams_ && stream >= outStreams_) return ::rtcpeer::fail("sctp: stream id beyond the negotiated streams");
  if (streamResetting(stream)) return ::rtcpeer::fail("sctp: stream is being reset");
  if (sendQueue_.totalBufferedAmount() + payload.size() > opts_.maxSendBuffer)
    return ::rtcpeer::fail("sctp: send buffer full");
  beginOpportunity();
  SendQueue::Limits limits;
  if (options.maxRetransmits) limits.maxRetransmits = *options.maxRetransmits;
  if (options.lifetime) limits.expiry = now + *options.lifetime;
  sendQueue_.add(stream, ppid, payload, options.unordered, limits);
  ++metrics_.messagesSent;
  return {};
}

std::optional<Event> Association::pollEvent() {
  if (events_.empty()) return std::nullopt;
  Event e = std::move(events_.front());
  events_.pop_front();
  return e;
}

std::optional<StreamReset> Association::pollStreamReset() {
  if (resets_.empty()) return std::nullopt;
  StreamReset r = std::move(resets_.front());
  resets_.pop_front();
  return r;
}

std::optional<Message> Association::pollMessage() {
  auto m = reasm_.pop();
  if (!m) return m;
  ++metrics_.messagesReceived;
  maybeWindowUpdate();  // if nothing else holds the bytes, popping the message frees them
  return m;
}

std::size_t Association::bufferedAmount(std::uint16_t stream) const noexcept {
  return sendQueue_.bufferedAmount(stream);
}

std::size_t Association::totalBufferedAmount() const noexcept { return sendQueue_.totalBufferedAmount(); }

Metrics Association::metrics() const {
  Metrics m = metrics_;
  m.srtt = rto_.srtt();
  m.rto = rto_.rto();
  m.cwnd = cc_ ? cc_->cwnd() : 0;
  m.ssthresh = cc_ ? cc_->ssthresh() : 0;
  m.peerRwnd = peerRwnd_;
  m.bytesInFlight = rtx_.flightBytes();
  m.receiveBuffered = receiveBuffered();
  return m;
}

// The cap counts from the flight before the opportunity's first event, so all the SACKs of a batch fed to
// handleInput() before one drain free their room: only the growth beyond what was acknowledged is limited.
// No deadlock: the cap only binds with data in flight, so a SACK or T3 (each a new opportunity) must follow.
void Association::beginOpportunity() noexcept {
  if (opportunityOpen_) return;
  opportunityOpen_ = true;
  burstCap_ = opts_.maxBurst ? rtx_.flightBytes() + opts_.maxBurst * opts_.mtu : ~std::size_t{0};
}

void Association::queueControl(ByteView packet) { control_.emplace_back(packet.begin(), packet.end()); }

void Association::releaseBuffers() {
  Bytes().swap(ctrlBuf_);
  Bytes().swap(txBuf_);
  reasm_.releaseSpares();
  Payload::trimPool();  // this thread's freed send payloads (shared by its associations: all idle or not, cheap)
}

PacketBuilder Association::controlPacket(std::uint32_t vtag) {
  ctrlBuf_.resize(opts_.mtu);
  return PacketBuilder(ctrlBuf_, opts_.localPort, opts_.remotePort, vtag);
}

void Association::sendAbortToPeer(std::uint32_t vtag, bool tBit, std::uint16_t cause, std::string_view info) {
  PacketBuilder b = controlPacket(vtag);
  std::size_t at = beginChunk(b.writer(), ChunkType::kAbort, tBit ? CauseChunk::kTBit : 0);
  if (info.size() > opts_.mtu - 64) info = info.substr(0, opts_.mtu - 64);
  writeCause(b.writer(), cause, asBytes(info));
  endChunk(b.writer(), at);
  queueControl(b.finish(true));
}

void Association::sendHeartbeatAck(const RawChunk& c) {
  auto hb = HeartbeatChunk::parse(c);
  if (!hb || hb->info.size() > opts_.mtu - 32) return;
  PacketBuilder b = controlPacket(peerTag_);
  HeartbeatChunk::write(b.writer(), true, hb->info);
  queueControl(b.finish(!sendZeroChecksum_));
}

void Association::reportUnknownChunk(const RawChunk& c) {
  PacketBuilder b = controlPacket(peerTag_);
  std::size_t at = beginChunk(b.writer(), ChunkType::kError, 0);
  std::size_t cause = beginTlv(b.writer(), CauseCode::kUnrecognizedChunkType);
  // The cause carries the unrecognized chunk itself (header and as much of its value as fits).
  b.writer().u8(c.type);
  b.writer().u8(c.flags);
  b.writer().u16(static_cast<std::uint16_t>(c.value.size() + 4));
  b.writer().bytes(c.value.first(std::min<std::size_t>(c.value.size(), opts_.mtu - 40)));
  endTlv(b.writer(), cause);
  endChunk(b.writer(), at);
  if (b.writer().ok()) queueControl(b.finish(!sendZeroChecksum_));
}

void Association::emit(Event::Type type, std::string reason) { events_.push_back(Event{type, std::move(reason)}); }

void Association::clearData() {
  sendQueue_.clear();
  rtx_.reset(0);
  rtx_.shrink();
  reasm_.clear();
  deferred_.clear();
  deferredBytes_ = 0;
  t3_ = {};
  delayedAck_ = kNever;
  pendingResponse_.reset();
}

}  // namespace rtcpeer::sctp
