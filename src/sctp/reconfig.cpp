// Stream reset (RFC 6525), the part WebRTC uses: Outgoing SSN Reset Requests and their responses (closing a data
// channel resets its stream in both directions, RFC 8831 6.7), and the peer's Incoming SSN Reset Requests, which we
// perform by resetting our outgoing streams (5.2.3). SSN/TSN reset and adding streams are answered "denied".
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
  // All or nothing: a refused request must not leave some of its streams pending (send() would fail on them).
  for (auto s : streams)
    if (s >= outStreams_) return ::rtcpeer::fail("sctp: stream id beyond the negotiated streams");
  for (auto s : streams)
    if (!streamResetting(s)) resetPending_.push_back(s);
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

// A Re-configuration Response still waiting to leave goes in the same RE-CONFIG chunk, before the request (RFC 6525
// 3.1 allows exactly this pair). That is what closing a channel the peer closed looks like: its reset answered and
// ours requested at once. Sent apart, a peer that frees the stream id on our response (werift) may open a new
// channel on it before our request arrives, which then closes the new channel.
void Association::sendReconfigRequest(Timestamp now) {
  PacketBuilder b = controlPacket(peerTag_);
  std::size_t at = beginChunk(b.writer(), ChunkType::kReConfig, 0);
  if (pendingResponse_) ReconfigResponse::write(b.writer(), pendingResponse_->first, pendingResponse_->second);
  OutgoingResetRequest::write(b.writer(), nextRequestSeq_, lastPeerRequestSeq_, rtx_.nextTsn() - 1, resetInFlight_);
  endChunk(b.writer(), at);
  if (!b.writer().ok() && pendingResponse_) {  // too many streams to share a packet: the response goes first
    flushReconfigResponse();
    sendReconfigRequest(now);
    return;
  }
  pendingResponse_.reset();
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
  int count = reconfigTimer_.count;
  sendReconfigRequest(now);
  // Backed off like T3-rtx (RFC 6525 5.1.1): unanswered requests are retried for tens of seconds, not ~2.
  Duration wait = rto_.rto();
  for (int i = 0; i < count && wait < opts_.rtoMax; ++i) wait = wait * 2;
  reconfigTimer_.deadline = now + std::min(wait, opts_.rtoMax);
  reconfigTimer_.count = count;
}

void Association::sendReconfigResponse(std::uint32_t seq, std::uint32_t result) {
  flushReconfigResponse();  // an earlier one still waiting leaves first, in order
  pendingResponse_.emplace(seq, result);
}

void Association::flushReconfigResponse() {
  if (!pendingResponse_) return;
  PacketBuilder b = controlPacket(peerTag_);
  std::size_t at = beginChunk(b.writer(), ChunkType::kReConfig, 0);
  ReconfigResponse::write(b.writer(), pendingResponse_->first, pendingResponse_->second);
  endChunk(b.writer(), at);
  pendingResponse_.reset();
  queueControl(b.finish(!sendZeroChecksum_));
}

void Association::performIncomingReset() {
  IncomingReset r = std::move(*incomingReset_);
  incomingReset_.reset();
  reasm_.resetStreams(r.streams);
  answerPeerRequest(r.seq, ReconfigResponse::kSuccessPerformed);
  resets_.push_back(StreamReset{true, false, std::move(r.streams)});
  // The deferred DATA belongs to the streams' new epoch (5.2.2 E2): it enters reassembly after the reset.
  std::vector<DeferredChunk> held = std::move(deferred_);
  deferred_.clear();
  deferredBytes_ = 0;
  for (auto& h : held) {
    if (auto s = reasm_.add(h.chunk, h.tsn64, peerIData_); !s) {
      sendAbortToPeer(peerTag_, false, CauseCode::kProtocolViolation, s.reason());
      terminate(Event::Type::Aborted, s.reason());
      return;
    }
  }
}

// RFC 6525 5.2.2 E2: while a reset waits for TSNs up to the sender's last one, later DATA of those streams waits.
bool Association::deferredByReset(const DataChunk& d) const noexcept {
  if (!incomingReset_ || !tsnLess(incomingReset_->lastTsn, d.tsn)) return false;
  const auto& s = incomingReset_->streams;
  return s.empty() || std::find(s.begin(), s.end(), d.stream) != s.end();
}

// RFC 6525 5.2.1 (and 5.2.2-5.2.6 E1): every request must carry the next expected sequence number; the last one
// again is a retransmission whose response was lost, answered the same way. True for a new request.
bool Association::acceptPeerRequest(std::uint32_t seq) {
  if (seq == lastPeerRequestSeq_ + 1) return true;
  if (seq != lastPeerRequestSeq_) sendReconfigResponse(seq, ReconfigResponse::kErrorBadSeq);
  else if (lastPeerResult_ != kAnsweredByRequest) sendReconfigResponse(seq, lastPeerResult_);
  // else our Outgoing SSN Reset Request is the answer and is retransmitted on its own timer.
  return false;
}

void Association::answerPeerRequest(std::uint32_t seq, std::uint32_t result) {
  lastPeerRequestSeq_ = seq;
  lastPeerResult_ = result;
  if (result != kAnsweredByRequest) sendReconfigResponse(seq, result);
}

// The peer asks us to reset our outgoing streams (RFC 6525 4.2, 5.2.3). We do it the ordinary way, with an Outgoing
// SSN Reset Request of our own; its Re-configuration Response Sequence Number (sendReconfigRequest writes
// lastPeerRequestSeq_) is this request's sequence number, which makes it the response (4.1, 5.2.3). Like a
// user's resetStreams(), it goes out once the streams' queued data has been sent and after any request of ours
// still outstanding (one request in flight, 5.1.1); send() on those streams fails meanwhile. The completion is
// reported as StreamReset{incoming=false}, the same as for resetStreams().
void Association::handleIncomingResetRequest(const IncomingResetRequest& req, Timestamp now) {
  if (!acceptPeerRequest(req.requestSeq)) return;
  std::vector<std::uint16_t> streams;
  // No stream listed means all (4.2): those we have sequence numbers for; the others are at 0 already.
  if (req.streamCount() == 0) streams = sendQueue_.streamIds();
  for (std::size_t i = 0; i < req.streamCount(); ++i) {
    if (req.stream(i) >= outStreams_) {  // not a stream of ours: nothing sensible to reset
      answerPeerRequest(req.requestSeq, ReconfigResponse::kDenied);
      return;
    }
    streams.push_back(req.stream(i));
  }
  if (streams.empty()) {
    answerPeerRequest(req.requestSeq, ReconfigResponse::kSuccessNothing);
    return;
  }
  bool added = false;
  for (auto s : streams) {
    if (std::find(resetInFlight_.begin(), resetInFlight_.end(), s) != resetInFlight_.end() ||
        std::find(resetPending_.begin(), resetPending_.end(), s) != resetPending_.end())
      continue;
    resetPending_.push_back(s);
    added = true;
  }
  // Every stream named is already in our outstanding request, which carries an older response sequence number:
  // the reset the peer asks for is under way ("Error - Request already in progress", 4.4).
  if (!added && resetPending_.empty()) {
    answerPeerRequest(req.requestSeq, ReconfigResponse::kErrorInProgress);
    return;
  }
  answerPeerRequest(req.requestSeq, kAnsweredByRequest);
  maybeSendReconfig(now);
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
        const bool waiting = incomingReset_ && incomingReset_->seq == req->requestSeq;  // retransmitted
        if (!waiting) {
          if (!acceptPeerRequest(req->requestSeq)) break;
          IncomingReset r{req->requestSeq, req->senderLastTsn, {}};
          for (std::size_t i = 0; i < req->streamCount(); ++i) r.streams.push_back(req->stream(i));
          incomingReset_ = std::move(r);
        }
        // 5.2.2: reset once every TSN up to the sender's last one has arrived; until then, "in progress".
        if (tsnLessEq(incomingReset_->lastTsn, tracker_.cumTsn())) performIncomingReset();
        else sendReconfigResponse(req->requestSeq, ReconfigResponse::kInProgress);
        break;
      }
      case ParamType::kIncomingResetRequest: {
        auto req = IncomingResetRequest::parse(t.value);
        if (!req) return;
        handleIncomingResetRequest(*req, now);
        break;
      }
      case ParamType::kReconfigResponse: {
        auto resp = ReconfigResponse::parse(t.value);
        if (!resp || !resetOutstanding_ || resp->responseSeq != nextRequestSeq_) break;
        if (resp->result == ReconfigResponse::kInProgress) {
          // The peer waits for earlier TSNs: the timer starts again, and its next expiry is not a failure
          // (RFC 6525 5.2.7), so a long wait on a lossy path never counts toward the ABORT.
          reconfigTimer_ = {};
          reconfigTimer_.deadline = now + rto_.rto();
          break;
        }
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
      case ParamType::kSsnTsnResetRequest:
      case ParamType::kAddOutgoingStreams:
      case ParamType::kAddIncomingStreams: {
        ByteReader r(t.value);
        std::uint32_t seq = r.u32();
        if (r.ok() && acceptPeerRequest(seq)) answerPeerRequest(seq, ReconfigResponse::kDenied);
        break;
      }
      default:
        break;
    }
  }
}

}  // namespace rtcpeer::sctp
