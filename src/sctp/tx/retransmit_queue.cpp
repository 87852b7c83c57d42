#include "sctp/tx/retransmit_queue.hpp"

#include <algorithm>

namespace rtcpeer::sctp {

void RetransmitQueue::reset(std::uint32_t initialTsn) {
  q_.clear();
  base_ = initialTsn;
  flight_ = 0;
  retransmitCount_ = 0;
  fastRecovery_ = false;
  nextExpiry_ = kNever;
}

std::uint32_t RetransmitQueue::add(Fragment frag, Timestamp now) {
  std::uint32_t tsn = nextTsn();
  if (q_.empty() && flight_ == 0) deliveredTime_ = now;  // rate samples start fresh after idle
  SentChunk c;
  c.frag = std::move(frag);
  c.sentAt = now;
  c.deliveredAtSend = delivered_;
  c.deliveredTimeAtSend = deliveredTime_;
  c.transmissions = 1;
  nextExpiry_ = std::min(nextExpiry_, c.frag.expiry);
  flight_ += chunkSize(c.frag);
  q_.push_back(std::move(c));
  return tsn;
}

void RetransmitQueue::ack(SentChunk& c, Timestamp now, SackOutcome& out, bool& sampled) {
  std::size_t size = chunkSize(c.frag);
  if (c.state == SentChunk::State::Abandoned) {  // already out of the flight; nothing was delivered late
    c.state = SentChunk::State::Acked;
    return;
  }
  if (c.state == SentChunk::State::InFlight) flight_ -= size;
  if (c.state == SentChunk::State::Retransmit) --retransmitCount_;
  c.state = SentChunk::State::Acked;
  out.bytesAcked += size;
  delivered_ += size;
  deliveredTime_ = now;
  // Chunks are visited in increasing TSN order, so the last one seen is the most recently sent; it gives the
  // freshest RTT sample (Karn: only chunks never retransmitted) and delivery-rate sample.
  if (c.transmissions == 1) {
    out.rtt = now - c.sentAt;
    sampled = true;
  }
  if (c.sentAt > latestAckedSentAt_) latestAckedSentAt_ = c.sentAt;
  out.rateBytes = delivered_ - c.deliveredAtSend;
  out.rateInterval = now - c.deliveredTimeAtSend;
}

void RetransmitQueue::markLost(SentChunk& c, SackOutcome& out) {
  c.state = SentChunk::State::Retransmit;
  flight_ -= chunkSize(c.frag);
  out.bytesLost += chunkSize(c.frag);
  ++retransmitCount_;
  if (!fastRecovery_) {
    fastRecovery_ = true;
    fastRecoveryExit_ = nextTsn() - 1;
    out.enteredFastRecovery = true;
  }
}

SackOutcome RetransmitQueue::onSack(const SackChunk& sack, Timestamp now, Duration reorderWindow) {
  SackOutcome out;
  out.flightBeforeSack = flight_;
  std::uint32_t cum = sack.cumTsnAck;
  // Ignore stale SACKs (cum behind ours) and ones acknowledging TSNs never sent (RFC 9260 6.2.1 D).
  if (tsnLess(cum, base_ - 1) || !tsnLess(cum, nextTsn())) {
    out.ignored = true;
    out.inFastRecovery = fastRecovery_;
    return out;
  }
  bool sampled = false;
  std::uint32_t highestNewlyAcked = base_ - 1;
  bool anyNew = false;
  while (!q_.empty() && tsnLessEq(base_, cum)) {
    SentChunk& c = q_.front();
    if (c.state != SentChunk::State::Acked) {
      ack(c, now, out, sampled);
      highestNewlyAcked = base_;
      anyNew = true;
    }
    q_.pop_front();
    ++base_;
    out.cumAdvanced = true;
  }
  std::uint32_t highestGapAcked = base_ - 1;
  for (std::size_t i = 0; i < sack.gapCount(); ++i) {
    GapBlock g = sack.gap(i);
    for (std::uint32_t off = g.start; off <= g.end; ++off) {
      std::uint32_t tsn = cum + off;
      std::uint32_t idx = tsn - base_;
      if (idx >= q_.size()) break;
      SentChunk& c = q_[idx];
      if (tsnLess(highestGapAcked, tsn)) highestGapAcked = tsn;
      if (c.state != SentChunk::State::Acked) {
        ack(c, now, out, sampled);
        highestNewlyAcked = tsn;
        anyNew = true;
      }
    }
  }
  if (fastRecovery_ && tsnLessEq(fastRecoveryExit_, base_ - 1)) fastRecovery_ = false;
  // Miss indications (RFC 9260 7.2.4): chunks still unacknowledged below the highest newly acknowledged TSN.
  if (anyNew && sack.gapCount() > 0) {
    for (std::size_t i = 0; i < q_.size() && tsnLess(base_ + static_cast<std::uint32_t>(i), highestNewlyAcked);
         ++i) {
      SentChunk& c = q_[i];
      if (c.state != SentChunk::State::InFlight || c.fastRetransmitted) continue;
      if (++c.missIndications < 3) continue;
      c.fastRetransmitted = true;
      markLost(c, out);
    }
  }
  if (anyNew && reorderWindow > Duration(0)) {
    for (std::size_t i = 0; i < q_.size(); ++i) {
      SentChunk& c = q_[i];
      if (c.state == SentChunk::State::InFlight && c.sentAt + reorderWindow < latestAckedSentAt_) markLost(c, out);
    }
  }
  if (!sampled) out.rtt.reset();
  out.inFastRecovery = fastRecovery_;
  return out;
}

void RetransmitQueue::onT3Expired() {
  for (std::size_t i = 0; i < q_.size(); ++i) {
    SentChunk& c = q_[i];
    if (c.state != SentChunk::State::InFlight) continue;
    c.state = SentChunk::State::Retransmit;
    flight_ -= chunkSize(c.frag);
    ++retransmitCount_;
  }
  fastRecovery_ = false;
}

void RetransmitQueue::abandonMessage(std::uint16_t stream, const std::uint8_t* id) {
  // Fragments of one message share its payload block: that identifies the message even for unordered DATA,
  // whose SSN field is meaningless.
  for (std::size_t i = 0; i < q_.size(); ++i) {
    SentChunk& c = q_[i];
    if (c.frag.data.view().data() != id) continue;
    if (c.state == SentChunk::State::InFlight) flight_ -= chunkSize(c.frag);
    if (c.state == SentChunk::State::Retransmit) --retransmitCount_;
    if (c.state != SentChunk::State::Acked) c.state = SentChunk::State::Abandoned;
    else c.ofAbandonedMessage = true;
  }
  abandoned_.emplace_back(stream, id);
}

void RetransmitQueue::expire(Timestamp now) {
  if (now < nextExpiry_) return;
  nextExpiry_ = kNever;
  for (std::size_t i = 0; i < q_.size(); ++i) {
    SentChunk& c = q_[i];
    if (c.state == SentChunk::State::Acked || c.state == SentChunk::State::Abandoned) continue;
    if (c.frag.expiry <= now) abandonMessage(c.frag.stream, c.frag.data.view().data());
    else nextExpiry_ = std::min(nextExpiry_, c.frag.expiry);
  }
}

// RFC 3758 3.5 C1/C2: from the cumulative ack, over abandoned chunks (and acknowledged pieces of abandoned
// messages, which the peer is to drop anyway) and over gap-acked chunks that hold a whole message. Not over a
// gap-acked fragment of a message still incomplete: a receiver may drop every fragment at or below the new
// cumulative TSN of such a message (dcSCTP does for unordered streams), so passing the acknowledged first fragments
// of a reliable message whose rest is in flight lost it. A whole message the peer holds is safe to pass: it was
// delivered (unordered) or waits for its turn by sequence number (ordered), and every earlier message of its stream
// is acknowledged, abandoned (in the skip list) or in flight before it (which stops the point first). Stopping at
// it too would cost an unreliable ordered channel one more round trip behind each loss (Godot's game traffic).
std::uint32_t RetransmitQueue::advancedPeerAckPoint() const noexcept {
  constexpr std::uint8_t kWhole = DataChunk::kBeginning | DataChunk::kEnding;
  std::uint32_t point = base_ - 1;
  for (std::size_t i = 0; i < q_.size(); ++i) {
    const SentChunk& c = q_[i];
    const bool passable = c.state == SentChunk::State::Abandoned ||
                          (c.state == SentChunk::State::Acked &&
                           (c.ofAbandonedMessage || (c.frag.flags & kWhole) == kWhole));
    if (!passable) break;
    point = base_ + static_cast<std::uint32_t>(i);
  }
  return point;
}

void RetransmitQueue::forwardTsnSkips(bool idata, std::vector<ForwardTsnChunk::Skip>& out) const {
  out.clear();
  std::uint32_t end = advancedPeerAckPoint() - base_ + 1;
  for (std::uint32_t i = 0; i < end; ++i) {
    const SentChunk& c = q_[i];
    bool unordered = c.frag.flags & DataChunk::kUnordered;
    if (c.state != SentChunk::State::Abandoned || (unordered && !idata)) continue;
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const auto& s) { return s.stream == c.frag.stream && s.unordered == unordered; });
    if (it == out.end()) out.push_back({c.frag.stream, unordered, c.frag.mid});
    else if (idata ? tsnLess(it->mid, c.frag.mid) : ssnLess(static_cast<std::uint16_t>(it->mid),
                                                            static_cast<std::uint16_t>(c.frag.mid)))
      it->mid = c.frag.mid;
  }
}

std::pair<std::uint32_t, SentChunk*> RetransmitQueue::takeRetransmit(std::size_t maxPayload, Timestamp now,
                                                                     bool partialReliability) {
  if (retransmitCount_ == 0) return {0, nullptr};
  for (std::size_t i = 0; i < q_.size(); ++i) {
    SentChunk& c = q_[i];
    if (c.state != SentChunk::State::Retransmit) continue;
    if (partialReliability && ((c.frag.maxRetransmits >= 0 && c.transmissions > c.frag.maxRetransmits) ||
                               c.frag.expiry <= now)) {
      abandonMessage(c.frag.stream, c.frag.data.view().data());  // RFC 3758 3.5 A1
      if (retransmitCount_ == 0) return {0, nullptr};
      continue;
    }
    if (c.frag.length > maxPayload) return {0, nullptr};  // keep TSN order: wait for a packet with room
    c.state = SentChunk::State::InFlight;
    c.sentAt = now;
    c.missIndications = 0;
    ++c.transmissions;
    --retransmitCount_;
    flight_ += chunkSize(c.frag);
    return {base_ + static_cast<std::uint32_t>(i), &c};
  }
  return {0, nullptr};
}

}  // namespace rtcpeer::sctp
