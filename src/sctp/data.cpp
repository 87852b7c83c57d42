// The data path of the association: receiving DATA/I-DATA (RFC 9260 6.2, 6.5), SACK processing and the T3-rtx
// timer (6.2.1, 6.3), and packing SACK, retransmissions and new DATA into outgoing packets (6.1, 6.10).
#include <algorithm>

#include "common/log.hpp"
#include "sctp/association.hpp"
#include "sctp/packet/chunks.hpp"
#include "sctp/packet/parameters.hpp"

namespace rtcpeer::sctp {
namespace {
// New DATA waits while this many TSNs are outstanding. Every message takes at least one TSN, so the 16-bit SSNs
// of one stream in flight then span less than half their space: a receiver can always place them (a lost chunk
// and 2^16 later messages on its stream would otherwise carry the same SSN). Gap Ack Block offsets are 16-bit too.
constexpr std::size_t kMaxOutstandingTsns = 32767;
}  // namespace

std::uint32_t Association::advertisedWindow() const noexcept {
  std::size_t used = receiveBuffered();
  return used >= opts_.receiveWindow ? 0 : static_cast<std::uint32_t>(opts_.receiveWindow - used);
}

// Window update (RFC 9260 6.2, receiver silly window avoidance): once the window we last advertised was below
// half the buffer, a SACK goes out as soon as reading has reopened it by a quarter of the buffer (and at least
// one packet), not for every message read.
void Association::maybeWindowUpdate() noexcept {
  if (terminated_ || state_ == State::Closed) return;
  const std::size_t window = advertisedWindow(), step = std::max<std::size_t>(opts_.receiveWindow / 4, opts_.mtu);
  if (lastAdvertisedRwnd_ < opts_.receiveWindow / 2 && window >= lastAdvertisedRwnd_ + step)
    tracker_.requestImmediateSack();
}

void Association::releaseUnread(std::size_t bytes) noexcept {
  unread_ -= std::min(unread_, bytes);
  maybeWindowUpdate();
}

bool Association::forwardTsnNeeded() const noexcept {
  return peerForwardTsn_ && tsnLess(rtx_.cumTsnAck(), rtx_.advancedPeerAckPoint());
}

void Association::handleData(const RawChunk& c) {
  if (state_ != State::Established && state_ != State::ShutdownPending && state_ != State::ShutdownSent) return;
  if ((c.type == ChunkType::kIData) != peerIData_) {
    // RFC 8260 2.2: DATA when I-DATA was negotiated (or the reverse) is a protocol violation.
    sendAbortToPeer(peerTag_, false, CauseCode::kProtocolViolation, "wrong DATA chunk type");
    terminate(Event::Type::Aborted, "protocol violation: DATA/I-DATA mismatch");
    return;
  }
  auto d = DataChunk::parse(c);
  if (!d) {
    std::uint16_t cause = d.failure().code == CauseCode::kNoUserData ? CauseCode::kNoUserData
                                                                     : CauseCode::kProtocolViolation;
    sendAbortToPeer(peerTag_, false, cause, d.reason());
    terminate(Event::Type::Aborted, d.reason());
    return;
  }
  if (d->flags & DataChunk::kImmediate) tracker_.requestImmediateSack();
  // Receiver window (6.2): beyond it, drop everything except the chunk that advances the cumulative TSN, so a
  // full buffer can still drain; a hard cap keeps memory bounded if the application stops reading.
  std::size_t buffered = receiveBuffered();
  if (buffered + d->payload.size() > opts_.receiveWindow &&
      (d->tsn != tracker_.cumTsn() + 1 || buffered > opts_.receiveWindow + opts_.maxMessageSize))
    return;
  std::uint64_t tsn64 = tracker_.unwrap(d->tsn);
  switch (tracker_.observe(d->tsn)) {
    case DataTracker::Verdict::Duplicate:
      ++metrics_.duplicateTsns;
      return;
    case DataTracker::Verdict::Rejected:
      return;
    case DataTracker::Verdict::New:
      break;
  }
  ++metrics_.dataChunksReceived;
  if (d->stream >= inStreams_) {
    // 6.5: acknowledge the TSN but report and drop the chunk.
    PacketBuilder b = controlPacket(peerTag_);
    std::size_t at = beginChunk(b.writer(), ChunkType::kError, 0);
    std::uint8_t info[4];
    storeBe16(info, d->stream);
    storeBe16(info + 2, 0);
    writeCause(b.writer(), CauseCode::kInvalidStream, ByteView(info, 4));
    endChunk(b.writer(), at);
    queueControl(b.finish(!sendZeroChecksum_));
    return;
  }
  metrics_.bytesReceived += d->payload.size();
  if (deferredByReset(*d)) {
    DeferredChunk& h = deferred_.emplace_back(DeferredChunk{tsn64, *d, Bytes(d->payload.begin(), d->payload.end())});
    h.chunk.payload = h.data;
    deferredBytes_ += h.data.size();
    return;
  }
  if (auto s = reasm_.add(*d, tsn64, peerIData_); !s) {
    sendAbortToPeer(peerTag_, false, CauseCode::kProtocolViolation, s.reason());
    terminate(Event::Type::Aborted, s.reason());
  }
}

void Association::handleSack(const RawChunk& c, Timestamp now) {
  if (state_ != State::Established && state_ != State::ShutdownPending && state_ != State::ShutdownReceived &&
      state_ != State::ShutdownSent)
    return;
  auto sack = SackChunk::parse(c);
  if (!sack) return;
  const Duration reorderWindow = cc_->reorderWindow(rto_.srtt());
  const bool rackEnabled = reorderWindow > Duration(0);
  SackOutcome out = rtx_.onSack(*sack, now, reorderWindow);
  if (out.ignored) return;  // stale or bogus: its a_rwnd is older than the one we hold (RFC 9260 6.2.1 D.i)
  out.appLimited = sendQueue_.empty() && rtx_.flightBytes() + opts_.mtu < cc_->cwnd();
  if (out.rtt) rto_.sample(*out.rtt);
  // Unacknowledged zero window probes are not failures while the peer keeps answering (RFC 9260 6.1 A): its
  // reader may keep the window shut for as long as it likes.
  if (out.bytesAcked > 0 || sack->arwnd == 0) errorCount_ = 0;
  if (out.enteredFastRecovery) {
    ++metrics_.fastRetransmits;
    cc_->onFastRetransmit(rtx_.flightBytes(), now);
  }
  if (rtx_.hasRetransmits()) fastRetransmitNow_ = out.enteredFastRecovery || fastRetransmitNow_;
  cc_->onSack(out, rto_.srtt(), now);
  std::size_t flight = rtx_.flightBytes();
  peerRwnd_ = sack->arwnd > flight ? sack->arwnd - flight : 0;
  // The peer has not caught up with abandoned data: repeat the FORWARD-TSN (RFC 3758 3.5 C3).
  if (forwardTsnNeeded()) forwardTsnPending_ = true;
  // T3 rules (6.3.2 R2, R3); it also guards an outstanding FORWARD-TSN.
  if (flight == 0 && !rtx_.hasRetransmits() && !forwardTsnNeeded()) t3_ = {};
  else if (out.cumAdvanced || (out.bytesAcked > 0 && rackEnabled))
    // With RACK-style loss detection, any newly acknowledged data shows the path alive and losses are found by
    // time, so T3 is re-armed (as RFC 8985 does) instead of firing while a hole is being repaired.
    t3_.deadline = now + rto_.rto();
  maybeSendReconfig(now);
  maybeProgressShutdown(now);
}

void Association::handleForwardTsn(const RawChunk& c) {
  if (state_ != State::Established && state_ != State::ShutdownPending && state_ != State::ShutdownSent) return;
  auto f = ForwardTsnChunk::parse(c);
  if (!f || f->idata != peerIData_) return;
  tracker_.requestImmediateSack();
  if (!tsnLess(tracker_.cumTsn(), f->newCumTsn)) return;  // old or duplicate: just acknowledge
  std::uint64_t cum64 = tracker_.unwrap(f->newCumTsn);
  if (!tracker_.forwardTo(f->newCumTsn)) {  // what the tracker refuses must not skip data in reassembly either
    RTCPEER_LOG(Warning, "sctp",
                "FORWARD-TSN to " << f->newCumTsn << " ignored: too far ahead of " << tracker_.cumTsn());
    return;
  }
  reasm_.skip(cum64, *f);
  // A stream reset waiting for TSNs the peer has now abandoned can be performed (RFC 6525 5.2.2).
  if (incomingReset_ && tsnLessEq(incomingReset_->lastTsn, tracker_.cumTsn())) performIncomingReset();
}

void Association::onT3(Timestamp now) {
  t3_.deadline = kNever;
  if (rtx_.empty()) return;
  ++metrics_.t3Expirations;
  if (++errorCount_ > opts_.maxRetransmits) {
    sendAbortToPeer(peerTag_, false, CauseCode::kProtocolViolation, "too many retransmissions");
    terminate(Event::Type::Aborted, "too many retransmissions: the peer stopped acknowledging data");
    return;
  }
  rto_.backoff();
  cc_->onTimeout(now);
  rtx_.onT3Expired();
  fastRetransmitNow_ = false;
  if (forwardTsnNeeded()) forwardTsnPending_ = true;
}

std::optional<ByteView> Association::buildDataPacket(Timestamp now) {
  if (txBuf_.size() < opts_.mtu) txBuf_.resize(opts_.mtu);
  PacketBuilder b(MutableByteView(txBuf_.data(), opts_.mtu), opts_.localPort, opts_.remotePort, peerTag_);
  SpanWriter& w = b.writer();
  const std::size_t hdr = peerIData_ ? DataChunk::kIDataHeader : DataChunk::kDataHeader;
  const bool canSendNew = state_ == State::Established || state_ == State::ShutdownPending ||
                          state_ == State::ShutdownReceived;
  const bool dataWaiting = rtx_.hasRetransmits() || (canSendNew && !sendQueue_.empty());
  // SACK first (6.10 bundling): when due, or piggybacked on outgoing data when any acknowledgement is pending.
  if (tracker_.sackDue() || (tracker_.sackPending() && dataWaiting)) {
    lastAdvertisedRwnd_ = advertisedWindow();
    tracker_.writeSack(w, lastAdvertisedRwnd_);
    delayedAck_ = kNever;
  }
  std::size_t cwnd = cc_->cwnd();
  bool sentData = false;
  bool bypassCwnd = fastRetransmitNow_;
  fastRetransmitNow_ = false;
  while (rtx_.hasRetransmits() && (bypassCwnd || rtx_.flightBytes() < cwnd) && w.remaining() > hdr) {
    auto [tsn, c] = rtx_.takeRetransmit(w.remaining() - hdr, now, peerForwardTsn_);
    if (!c) break;
    const Fragment& f = c->frag;
    DataChunk{tsn, f.stream, f.mid, f.fsn, f.ppid, f.flags, f.data.view().subspan(f.offset, f.length)}.write(w, peerIData_);
    ++metrics_.retransmissions;
    sentData = true;
  }
  // Abandoned messages (RFC 3758): drop their unsent fragments and tell the peer to move on.
  for (auto [stream, id] : rtx_.abandonedMessages()) {
    sendQueue_.discardPartial(stream, id);
    forwardTsnPending_ = true;
  }
  rtx_.abandonedMessages().clear();
  if (forwardTsnPending_ && forwardTsnNeeded()) {
    rtx_.forwardTsnSkips(peerIData_, skips_);
    std::size_t room = w.remaining() > 8 ? (w.remaining() - 8) / (peerIData_ ? 8 : 4) : 0;
    if (room > 0) {
      if (skips_.size() > room) skips_.resize(room);
      ForwardTsnChunk::write(w, peerIData_, rtx_.advancedPeerAckPoint(), skips_);
      forwardTsnPending_ = false;
      sentData = true;  // arms T3 so a lost FORWARD-TSN is repeated
    }
  }
  // New DATA is limited by cwnd and by Max.Burst (RFC 9260 6.1 D, a temporary cwnd); retransmissions only by
  // cwnd (6.1 C). The burst cap is checked per packet: one that starts a full packet below the cap is filled, so
  // bundled small messages do not leave a short packet and an opportunity that freed nothing sends exactly
  // maxBurst full packets.
  const bool burstRoom = rtx_.flightBytes() + opts_.mtu <= burstCap_;
  while (canSendNew && burstRoom && !rtx_.hasRetransmits() && !sendQueue_.empty() && rtx_.flightBytes() < cwnd &&
         w.remaining() > hdr + 3 && rtx_.outstanding() < kMaxOutstandingTsns) {
    std::size_t space = (w.remaining() - hdr) & ~std::size_t{3};
    std::size_t size = sendQueue_.nextFragmentSize(space);
    // Do not cut a message into a sliver to fill the end of a packet; it goes whole into the next one.
    if (size == space && space < 256 && sentData) break;
    // Receiver window (6.1 A): with nothing in flight one chunk may probe a closed window.
    if (size > peerRwnd_ && rtx_.flightBytes() > 0) break;
    auto frag = sendQueue_.produce(space, peerIData_, now, peerForwardTsn_);
    for (auto [stream, id] : sendQueue_.expiredPartial()) {
      rtx_.abandonMessage(stream, id);  // the FORWARD-TSN goes out with the next packet
      forwardTsnPending_ = true;
    }
    sendQueue_.expiredPartial().clear();
    if (!frag) break;
    peerRwnd_ -= std::min<std::size_t>(peerRwnd_, frag->length);
    ByteView payload = frag->data.view().subspan(frag->offset, frag->length);
    DataChunk chunk{0, frag->stream, frag->mid, frag->fsn, frag->ppid, frag->flags, payload};
    metrics_.bytesSent += frag->length;
    chunk.tsn = rtx_.add(std::move(*frag), now);
    chunk.write(w, peerIData_);
    ++metrics_.dataChunksSent;
    sentData = true;
  }
  if (b.empty()) {
    sendQueue_.markOffered();  // the opportunity is over: what is still queued has had its chance
    return std::nullopt;
  }
  if (sentData && t3_.deadline == kNever) t3_.deadline = now + rto_.rto();
  ++metrics_.packetsSent;
  return b.finish(!sendZeroChecksum_);
}

}  // namespace rtcpeer::sctp
