// Stream reset (RFC 6525), the part WebRTC uses: Outgoing SSN Reset Requests and their responses. Closing a data
// channel resets its stream in both directions (RFC 8831 6.7); other request types are answered "denied".
#include <algorithm>

#include "common/log.hpp"
#include "sctp/association.hpp"
#include "sctp/packet/chunks.hpp"
#include "sctp/packet/parameters.hpp"

namespace rtcpeer::sctp {

Status Association::resetStreams(std::span<const std::uint16_t> streams, Timestamp now) {
  if (state_ != State::Established) return ::rtcpeer::fail("sctp: stream reset needs an established association");
  if (!peerReconfig_) return ::rtcpeer::fail("sctp: the peer does not support stream reset (RFC 6525)");
  if (streams.empty()) return ::rtcpeer::fail("sctp: no streams to reset");
  for (auto s : streams) {
    if (s >= outStreams_) return ::rtcpeer::fail("sctp: stream id beyond the negotiated streams");
    if (!streamResetting(s)) resetPending_.push_back(s);
  }
  maybeSendReconfig(now);
  return {};
}

bool Association::streamResetting(std::uint16_t stream) const noexcept {
  return std::find(resetPending_.begin(), resetPending_.end(), stream) != resetPending_.end() ||
         std::find(resetInFlight_.begin(), resetInFlight_.end(), stream) != resetInFlight_.end();
}

void Association::maybeSendReconfig(Timestamp now) {
  if (resetOutstanding_ || resetPending_.empty() || state_ != State::Established) return;
  // The request names our last TSN, so every queued message on these streams must have been sent first.
  for (auto s : resetPending_)
    if (sendQueue_.bufferedAmount(s) > 0) return;
  resetInFlight_ = std::move(resetPending_);
  resetPending_.clear();
  resetOutstanding_ = true;
  reconfigTimer_ = {};
  sendReconfigRequest(now);
}

void Association::sendReconfigRequest(Timestamp now) {
  PacketBuilder b = controlPacket(peerTag_);
  std::size_t at = beginChunk(b.writer(), ChunkType::kReConfig, 0);
  OutgoingResetRequest::write(b.writer(), nextRequestSeq_, lastPeerRequestSeq_, rtx_.nextTsn() - 1, resetInFlight_);
  endChunk(b.writer(), at);
  if (!b.writer().ok()) {  // more streams than fit in one packet: keep the rest for the next request
    std::size_t keep = (opts_.mtu - 48) / 2;
    resetPending_.insert(resetPending_.begin(), resetInFlight_.begin() + static_cast<std::ptrdiff_t>(keep),
                         resetInFlight_.end());
    resetInFlight_.resize(keep);
    sendReconfigRequest(now);
    return;
  }
  queueControl(b.finish(!sendZeroChecksum_));
  reconfigTimer_.deadline = now + rto_.rto();
}

void Association::onReconfigTimer(Timestamp now) {
  reconfigTimer_.deadline = kNever;
  if (!resetOutstanding_) return;
  if (++reconfigTimer_.count > opts_.maxRetransmits) {
    sendAbortToPeer(peerTag_, false, CauseCode::kProtocolViolation, "stream reset unanswered");
    terminate(Event::Type::Aborted, "stream reset request unanswered");
    return;
  }
  sendReconfigRequest(now);
}

void Association::sendReconfigResponse(std::uint32_t seq, std::uint32_t result) {
  PacketBuilder b = controlPacket(peerTag_);
  std::size_t at = beginChunk(b.writer(), ChunkType::kReConfig, 0);
  ReconfigResponse::write(b.writer(), seq, result);
  endChunk(b.writer(), at);
  queueControl(b.finish(!sendZeroChecksum_));
}

void Association::performIncomingReset() {
  IncomingReset r = std::move(*incomingReset_);
  incomingReset_.reset();
  reasm_.resetStreams(r.streams);
  lastPeerRequestSeq_ = r.seq;
  sendReconfigResponse(r.seq, ReconfigResponse::kSuccessPerformed);
  resets_.push_back(StreamReset{true, false, std::move(r.streams)});
}

void Association::handleReConfig(const RawChunk& c, Timestamp now) {
  if (state_ != State::Established && state_ != State::ShutdownPending) return;
  auto rc = ReConfigChunk::parse(c);
  if (!rc) return;
  TlvIterator it(rc->params);
  Tlv t;
  while (it.next(t)) {
    switch (t.type) {
      case ParamType::kOutgoingResetRequest: {
        auto req = OutgoingResetRequest::parse(t.value);
        if (!req) return;
        if (req->requestSeq == lastPeerRequestSeq_) {  // a retransmission of one we performed
          sendReconfigResponse(req->requestSeq, ReconfigResponse::kSuccessPerformed);
        } else if (req->requestSeq != lastPeerRequestSeq_ + 1) {
          sendReconfigResponse(req->requestSeq, ReconfigResponse::kErrorBadSeq);
        } else if (!incomingReset_) {
          IncomingReset r{req->requestSeq, req->senderLastTsn, {}};
          for (std::size_t i = 0; i < req->streamCount(); ++i) r.streams.push_back(req->stream(i));
          incomingReset_ = std::move(r);
          // 5.2.2: reset once every TSN up to the sender's last one has arrived; until then, "in progress".
          if (tsnLessEq(incomingReset_->lastTsn, tracker_.cumTsn())) performIncomingReset();
          else sendReconfigResponse(req->requestSeq, ReconfigResponse::kInProgress);
        }
        break;
      }
      case ParamType::kReconfigResponse: {
        auto resp = ReconfigResponse::parse(t.value);
        if (!resp || !resetOutstanding_ || resp->responseSeq != nextRequestSeq_) break;
        if (resp->result == ReconfigResponse::kInProgress) break;  // the timer asks again
        resetOutstanding_ = false;
        reconfigTimer_ = {};
        ++nextRequestSeq_;
        std::vector<std::uint16_t> done = std::move(resetInFlight_);
        resetInFlight_.clear();
        if (resp->result == ReconfigResponse::kSuccessPerformed || resp->result == ReconfigResponse::kSuccessNothing) {
          sendQueue_.resetStreams(done);
          resets_.push_back(StreamReset{false, false, std::move(done)});
        } else {
          RTCPEER_LOG(Warning, "sctp", "peer refused a stream reset (result " << resp->result << ")");
          resets_.push_back(StreamReset{false, true, std::move(done)});
        }
        maybeSendReconfig(now);
        break;
      }
      case ParamType::kIncomingResetRequest:
      case ParamType::kSsnTsnResetRequest:
      case ParamType::kAddOutgoingStreams:
      case ParamType::kAddIncomingStreams: {
        ByteReader r(t.value);
        sendReconfigResponse(r.u32(), ReconfigResponse::kDenied);
        break;
      }
      default:
        break;
    }
  }
}

}  // namespace rtcpeer::sctp
