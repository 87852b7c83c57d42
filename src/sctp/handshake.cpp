// Association setup and teardown (RFC 9260 sections 5 and 9): INIT / INIT-ACK / COOKIE-ECHO / COOKIE-ACK with a
// stateless responder, simultaneous open and restart via the section 5.2.4 tag table, graceful SHUTDOWN, ABORT,
// and the T1-init, T1-cookie and T2-shutdown timers.
#include "common/log.hpp"
#include "sctp/association.hpp"
#include "sctp/packet/chunks.hpp"
#include "sctp/packet/parameters.hpp"

namespace rtcpeer::sctp {
namespace {

std::uint32_t nonZeroTag(Random& r) {
  std::uint32_t t = 0;
  while (t == 0) t = r.u32();
  return t;
}

}  // namespace

void Association::sendInit(Timestamp now) {
  if (state_ == State::Closed) {
    localTag_ = nonZeroTag(rng_);
    localInitialTsn_ = rng_.u32();
    state_ = State::CookieWait;
    t1_ = {};
  }
  PacketBuilder b = controlPacket(0);
  InitChunk init{localTag_, opts_.receiveWindow, opts_.streams, opts_.streams, localInitialTsn_, {}};
  std::size_t at = init.writeBegin(b.writer(), false);
  // Zero Checksum Acceptable (RFC 9653) goes in the first INIT and its first retransmission only: a passive peer
  // that drops an INIT holding a parameter it does not know (Pion's SCTP does, against RFC 9260 3.2.1) then
  // still gets a plain INIT 0.6 s in. A peer that answered one of the first two has seen the declaration.
  constexpr int kInitsDeclaringZeroChecksum = 2;
  writeCapabilityParams(b.writer(), opts_.enableIData,
                        opts_.enableZeroChecksum && t1_.count < kInitsDeclaringZeroChecksum);
  endChunk(b.writer(), at);
  queueControl(b.finish(true));
  t1_.deadline = now + rto_.rto();
}

void Association::onT1(Timestamp now) {
  t1_.deadline = kNever;
  if (state_ != State::CookieWait && state_ != State::CookieEchoed) return;
  if (++t1_.count > opts_.maxInitRetransmits) {
    terminate(Event::Type::Aborted, state_ == State::CookieWait ? "handshake failed: no INIT-ACK from the peer"
                                                                : "handshake failed: no COOKIE-ACK from the peer");
    return;
  }
  rto_.backoff();
  if (state_ == State::CookieWait) {
    sendInit(now);
    return;
  }
  PacketBuilder b = controlPacket(peerTag_);
  writeCookieEcho(b.writer(), cookieEcho_);
  queueControl(b.finish(true));
  t1_.deadline = now + rto_.rto();
}

void Association::handleInit(const CommonHeader& h, const RawChunk& c, Timestamp now) {
  if (h.verificationTag != 0) return;  // RFC 9260 8.5.1 A
  auto init = InitChunk::parse(c);
  if (!init) {
    sendAbortToPeer(h.verificationTag, true, CauseCode::kInvalidMandatoryParameter, init.reason());
    return;
  }
  Bytes unrecognized;
  auto params = parseInitParams(init->params, &unrecognized);
  if (!params) return;
  if (state_ == State::ShutdownAckSent) return;  // 9.2: wait for SHUTDOWN-COMPLETE

  // Which tags the INIT-ACK and its cookie carry depends on our state (RFC 9260 5.2.1, 5.2.2).
  CookieState cs;
  switch (state_) {
    case State::CookieWait:
      cs.localTag = localTag_;
      cs.localInitialTsn = localInitialTsn_;
      break;
    case State::CookieEchoed:
      cs.localTag = localTag_;
      cs.localInitialTsn = localInitialTsn_;
      cs.tieLocalTag = localTag_;
      cs.tiePeerTag = peerTag_;
      break;
    case State::Closed:
      cs.localTag = nonZeroTag(rng_);
      cs.localInitialTsn = rng_.u32();
      break;
    default:  // an existing association: the peer may be restarting
      cs.localTag = nonZeroTag(rng_);
      cs.localInitialTsn = rng_.u32();
      cs.tieLocalTag = localTag_;
      cs.tiePeerTag = peerTag_;
      break;
  }
  cs.peerTag = init->initiateTag;
  cs.peerInitialTsn = init->initialTsn;
  cs.peerArwnd = init->arwnd;
  cs.peerOutStreams = init->outStreams;
  cs.peerInStreams = init->inStreams;
  cs.peerForwardTsn = params->forwardTsn;
  cs.peerIData = params->idata;
  cs.peerReconfig = params->reconfig;
  cs.peerZeroChecksum = params->zeroChecksumEdmid == kEdmidDtls;
  cs.createdUs = toMicros(now);

  PacketBuilder b = controlPacket(init->initiateTag);
  InitChunk ack{cs.localTag, opts_.receiveWindow, opts_.streams, opts_.streams, cs.localInitialTsn, {}};
  SpanWriter& w = b.writer();
  std::size_t at = ack.writeBegin(w, true);
  std::size_t cookie = beginTlv(w, ParamType::kStateCookie);
  encodeCookie(cs, cookieSecret_, w);
  endTlv(w, cookie);
  // Zero Checksum Acceptable only to a peer whose INIT carried it too: some stacks (Pion 3's SCTP) drop an INIT or
  // INIT-ACK holding a parameter they do not know, against RFC 9260 3.2.1. Their INIT then still completes the
  // handshake with us (both sides send INIT, RFC 8841 9.3), and a peer that can use zero checksums declared it.
  writeCapabilityParams(w, opts_.enableIData, opts_.enableZeroChecksum && cs.peerZeroChecksum);
  if (unrecognized.size() <= w.remaining() - 64) w.bytes(unrecognized);
  endChunk(w, at);
  if (w.ok()) queueControl(b.finish(true));
}

void Association::handleInitAck(const RawChunk& c, Timestamp now) {
  if (state_ != State::CookieWait) return;  // 5.2.3: unexpected INIT-ACK is discarded
  auto init = InitChunk::parse(c);
  if (!init) {
    sendAbortToPeer(localTag_, false, CauseCode::kInvalidMandatoryParameter, init.reason());
    terminate(Event::Type::Aborted, "handshake failed: " + init.reason());
    return;
  }
  auto params = parseInitParams(init->params);
  if (!params || params->stateCookie.empty()) {
    sendAbortToPeer(init->initiateTag, false, CauseCode::kMissingMandatoryParameter, "no state cookie");
    terminate(Event::Type::Aborted, "handshake failed: INIT-ACK without a state cookie");
    return;
  }
  peerTag_ = init->initiateTag;
  pending_ = CookieState{};
  pending_.localTag = localTag_;
  pending_.peerTag = peerTag_;
  pending_.localInitialTsn = localInitialTsn_;
  pending_.peerInitialTsn = init->initialTsn;
  pending_.peerArwnd = init->arwnd;
  pending_.peerOutStreams = init->outStreams;
  pending_.peerInStreams = init->inStreams;
  pending_.peerForwardTsn = params->forwardTsn;
  pending_.peerIData = params->idata;
  pending_.peerReconfig = params->reconfig;
  pending_.peerZeroChecksum = params->zeroChecksumEdmid == kEdmidDtls;
  cookieEcho_.assign(params->stateCookie.begin(), params->stateCookie.end());
  state_ = State::CookieEchoed;
  t1_ = {};
  PacketBuilder b = controlPacket(peerTag_);
  writeCookieEcho(b.writer(), cookieEcho_);
  if (!b.writer().ok()) {
    terminate(Event::Type::Aborted, "handshake failed: state cookie too large");
    return;
  }
  queueControl(b.finish(true));
  t1_.deadline = now + rto_.rto();
}

void Association::handleCookieEcho(const CommonHeader& h, const RawChunk& c, Timestamp now) {
  auto cs = decodeCookie(c.value, cookieSecret_, now, opts_.cookieLifetime);
  if (!cs) {
    if (cs.failure().code == CauseCode::kStaleCookie) {
      PacketBuilder b = controlPacket(h.verificationTag);
      std::size_t at = beginChunk(b.writer(), ChunkType::kError, 0);
      std::uint8_t staleness[4] = {};
      writeCause(b.writer(), CauseCode::kStaleCookie, ByteView(staleness, 4));
      endChunk(b.writer(), at);
      queueControl(b.finish(true));
    }
    return;
  }
  if (h.verificationTag != cs->localTag) return;  // 5.1.5 step 4... the packet must carry the cookie's tag
  auto ackBack = [&] {
    PacketBuilder b = controlPacket(cs->peerTag);
    writeEmptyChunk(b.writer(), ChunkType::kCookieAck);
    queueControl(b.finish(true));
  };
  switch (state_) {
    case State::Closed:
    case State::CookieWait:
      establish(*cs, now, false);
      ackBack();
      return;
    case State::CookieEchoed:
      if (cs->localTag != localTag_) return;
      establish(*cs, now, false);  // simultaneous open (5.2.4 B/D)
      ackBack();
      return;
    default:
      break;
  }
  // An existing association (RFC 9260 5.2.4, table 2).
  bool localMatch = cs->localTag == localTag_, peerMatch = cs->peerTag == peerTag_;
  if (localMatch && peerMatch) {  // D: a duplicate; the COOKIE-ACK may have been lost
    ackBack();
  } else if (!localMatch && !peerMatch && cs->tieLocalTag == localTag_ && cs->tiePeerTag == peerTag_) {
    if (state_ == State::ShutdownAckSent) return;  // A during shutdown: 9.2 says finish the shutdown first
    establish(*cs, now, true);  // A: the peer restarted
    ackBack();
  } else if (localMatch) {  // B: INIT collision, adopt the peer's tag from the cookie
    peerTag_ = cs->peerTag;
    ackBack();
  }
  // C (only the peer tag matches, or nothing does): silently discarded.
}

void Association::handleCookieAck(Timestamp now) {
  if (state_ != State::CookieEchoed) return;
  establish(pending_, now, false);
}

void Association::establish(const CookieState& s, Timestamp now, bool restart) {
  if (restart) {
    clearData();
    rto_ = RtoEstimator(opts_.rtoInitial, opts_.rtoMin, opts_.rtoMax);
  }
  localTag_ = s.localTag;
  peerTag_ = s.peerTag;
  localInitialTsn_ = s.localInitialTsn;
  outStreams_ = std::min(opts_.streams, s.peerInStreams);
  inStreams_ = std::min(opts_.streams, s.peerOutStreams);
  peerIData_ = opts_.enableIData && s.peerIData;
  peerForwardTsn_ = s.peerForwardTsn;
  peerReconfig_ = s.peerReconfig;
  sendZeroChecksum_ = s.peerZeroChecksum;
  rtx_.reset(s.localInitialTsn);
  rtx_.setIData(peerIData_);
  tracker_.reset(s.peerInitialTsn);
  nextRequestSeq_ = s.localInitialTsn;  // RFC 6525 5.1.2 / 4.1: request sequence numbers start at the initial TSN
  lastPeerRequestSeq_ = s.peerInitialTsn - 1;
  lastPeerResult_ = ReconfigResponse::kErrorBadSeq;  // there was no request before the first
  resetPending_.clear();
  resetInFlight_.clear();
  resetOutstanding_ = false;
  incomingReset_.reset();
  reconfigTimer_ = {};
  peerRwnd_ = s.peerArwnd;
  cc_ = makeCongestionController(opts_.congestionControl, opts_.mtu, opts_.initialCwndMtus * opts_.mtu, s.peerArwnd);
  state_ = State::Established;
  t1_ = {};
  handshakeDeadline_ = kNever;
  errorCount_ = 0;
  cookieEcho_.clear();
  cookieEcho_.shrink_to_fit();
  heartbeatAt_ = opts_.heartbeatInterval.count() ? now + opts_.heartbeatInterval : kNever;
  RTCPEER_LOG(Debug, "sctp", (restart ? "restarted" : "established") << ", streams out " << outStreams_ << " in "
                                                                    << inStreams_ << (peerIData_ ? ", I-DATA" : ""));
  emit(restart ? Event::Type::Restarted : Event::Type::Connected);
}

void Association::handleAbort(const CommonHeader& h, const RawChunk& c) {
  auto a = CauseChunk::parse(c);
  if (!a || state_ == State::Closed) return;
  // 8.5.1 B: our tag, or (T bit) the peer's own tag reflected.
  if (h.verificationTag != (a->tBit ? peerTag_ : localTag_)) return;
  if (state_ == State::CookieWait && a->tBit) return;  // we do not know the peer's tag yet
  // No cause at all reports no error: the peer just ended the association (aiortc's close sends that), so it
  // counts as a user abort, like one carrying the User-Initiated Abort cause.
  bool userAbort = a->causes.empty();
  TlvIterator it(a->causes);
  for (Tlv t; it.next(t);) userAbort = userAbort || t.type == CauseCode::kUserInitiatedAbort;
  terminate(Event::Type::Aborted, "peer aborted: " + describeCauses(a->causes));
  if (userAbort && !events_.empty()) events_.back().peerUserAbort = true;
}

void Association::shutdown(Timestamp now) {
  if (terminated_) return;
  switch (state_) {
    case State::Closed:
    case State::CookieWait:
    case State::CookieEchoed:
      if (state_ == State::CookieEchoed) sendAbortToPeer(peerTag_, false, CauseCode::kUserInitiatedAbort, "closed");
      terminate(Event::Type::Closed, "closed before the association was established");
      return;
    case State::Established:
      state_ = State::ShutdownPending;
      maybeProgressShutdown(now);
      return;
    default:
      return;  // already shutting down
  }
}

void Association::abort(std::string reason, Timestamp now) {
  (void)now;
  if (terminated_) return;
  if (state_ != State::Closed && state_ != State::CookieWait)
    sendAbortToPeer(peerTag_, false, CauseCode::kUserInitiatedAbort, reason);
  terminate(Event::Type::Aborted, std::move(reason));
}

void Association::maybeProgressShutdown(Timestamp now) {
  if (!sendQueue_.empty() || !rtx_.empty()) return;
  if (state_ == State::ShutdownPending) {
    state_ = State::ShutdownSent;
    t2_ = {};
    onT2(now);  // sends SHUTDOWN and arms T2 (without counting an expiry)
    t2_.count = 0;
  } else if (state_ == State::ShutdownReceived) {
    state_ = State::ShutdownAckSent;
    t2_ = {};
    onT2(now);
    t2_.count = 0;
  }
}

void Association::onT2(Timestamp now) {
  t2_.deadline = kNever;
  if (state_ != State::ShutdownSent && state_ != State::ShutdownAckSent) return;
  if (t2_.count > 0) rto_.backoff();
  if (++t2_.count > opts_.maxRetransmits + 1) {
    sendAbortToPeer(peerTag_, false, CauseCode::kProtocolViolation, "shutdown timed out");
    terminate(Event::Type::Aborted, "shutdown timed out");
    return;
  }
  PacketBuilder b = controlPacket(peerTag_);
  if (state_ == State::ShutdownSent) ShutdownChunk{tracker_.cumTsn()}.write(b.writer());
  else writeEmptyChunk(b.writer(), ChunkType::kShutdownAck);
  queueControl(b.finish(!sendZeroChecksum_));
  t2_.deadline = now + rto_.rto();
}

void Association::handleShutdown(const RawChunk& c, Timestamp now) {
  auto s = ShutdownChunk::parse(c);
  if (!s) return;
  switch (state_) {
    case State::Established:
    case State::ShutdownPending:
    case State::ShutdownReceived: {
      // The SHUTDOWN's cumulative ack acknowledges our data like a SACK without gaps (9.2).
      std::uint8_t body[12];
      storeBe32(body, s->cumTsnAck);
      storeBe32(body + 4, static_cast<std::uint32_t>(std::min<std::size_t>(peerRwnd_ + rtx_.flightBytes(), ~0u)));
      storeBe32(body + 8, 0);
      state_ = State::ShutdownReceived;
      handleSack(RawChunk{ChunkType::kSack, 0, ByteView(body, 12)}, now);
      maybeProgressShutdown(now);
      return;
    }
    case State::ShutdownSent:  // both sides closing at once: 9.2 says answer with SHUTDOWN-ACK
      state_ = State::ShutdownAckSent;
      t2_ = {};
      onT2(now);
      t2_.count = 0;
      return;
    default:
      return;
  }
}

void Association::handleShutdownAck() {
  if (state_ != State::ShutdownSent && state_ != State::ShutdownAckSent) return;
  PacketBuilder b = controlPacket(peerTag_);
  writeEmptyChunk(b.writer(), ChunkType::kShutdownComplete);
  queueControl(b.finish(!sendZeroChecksum_));
  terminate(Event::Type::Closed, "");
}

void Association::handleShutdownComplete(const CommonHeader& h, const RawChunk& c) {
  if (state_ != State::ShutdownAckSent) return;
  bool tBit = c.flags & 1;
  if (h.verificationTag != (tBit ? peerTag_ : localTag_)) return;
  terminate(Event::Type::Closed, "");
}

void Association::terminate(Event::Type type, std::string reason) {
  if (terminated_) return;
  RTCPEER_LOG(Debug, "sctp", "association ended in state " << toString(state_) << ": " << reason);
  state_ = State::Closed;
  terminated_ = true;
  t1_ = t2_ = t3_ = reconfigTimer_ = {};
  delayedAck_ = heartbeatAt_ = handshakeDeadline_ = kNever;
  pendingResponse_.reset();  // nothing follows an ABORT
  // Free the send side at once; messages already received stay readable through pollMessage().
  sendQueue_.clear();
  rtx_.reset(0);
  rtx_.shrink();
  emit(type, std::move(reason));
}

}  // namespace rtcpeer::sctp
