// DATA chunks sent and not yet cumulatively acknowledged, indexed by TSN. Processes SACKs (RFC 9260 6.2.1,
// 7.2.4): cumulative and gap acknowledgements, miss indications and fast retransmit, fast recovery, RTT samples
// by Karn's rule, and delivery-rate samples for rate-based congestion control.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/time.hpp"
#include "sctp/packet/chunks.hpp"
#include "sctp/ring_buffer.hpp"
#include "sctp/tx/send_queue.hpp"

namespace rtcpeer::sctp {

struct SentChunk {
  enum class State : std::uint8_t { InFlight, Acked, Retransmit, Abandoned };
  Fragment frag;
  Timestamp sentAt{};
  Timestamp deliveredTimeAtSend{};
  std::uint64_t deliveredAtSend = 0;
  std::uint16_t missIndications = 0;
  std::uint16_t transmissions = 0;
  State state = State::InFlight;
  bool fastRetransmitted = false;
  bool ofAbandonedMessage = false;  // Acked, but its message was abandoned: a FORWARD-TSN may pass it
};

struct SackOutcome {
  bool cumAdvanced = false;
  std::size_t bytesAcked = 0;        // newly acknowledged (cumulatively or by gap), chunk sizes
  std::size_t bytesLost = 0;         // newly declared lost
  std::size_t flightBeforeSack = 0;
  std::optional<Duration> rtt;       // from a chunk transmitted once
  bool enteredFastRecovery = false;  // new loss detected by three miss indications
  bool inFastRecovery = false;
  std::uint64_t rateBytes = 0;       // delivery-rate sample: bytes delivered over rateInterval
  Duration rateInterval{0};
  bool appLimited = false;           // set by the association: the sender had less to send than cwnd allowed
  /// A stale (reordered) SACK, cumulative TSN ack below ours, or one acknowledging TSNs never sent: it must
  /// change nothing, neither the peer's rwnd nor the congestion controller (RFC 9260 6.2.1 D.i).
  bool ignored = false;
};

class RetransmitQueue {
 public:
  void reset(std::uint32_t initialTsn);
  /// With I-DATA (RFC 8260) each chunk carries a 20-byte header instead of 16: in-flight bytes count it.
  void setIData(bool idata) noexcept { header_ = idata ? DataChunk::kIDataHeader : DataChunk::kDataHeader; }

  /// Records a fragment as sent now; returns its TSN.
  std::uint32_t add(Fragment frag, Timestamp now);
  /// `reorderWindow` > 0 enables RACK-style time-based loss detection (RFC 8985 idea): a chunk sent more than
  /// that long before the most recently sent chunk now acknowledged is lost, retransmissions included.
  SackOutcome onSack(const SackChunk& sack, Timestamp now, Duration reorderWindow = Duration(0));
  /// T3-rtx expiry (RFC 9260 6.3.3): every chunk in flight is marked for retransmission.
  void onT3Expired();

  [[nodiscard]] bool hasRetransmits() const noexcept { return retransmitCount_ > 0; }
  /// The lowest-TSN chunk awaiting retransmission whose payload fits, marked in flight again; or null. With
  /// `partialReliability` (RFC 3758 negotiated), messages past their retransmission or lifetime limit are
  /// abandoned instead and reported through takeAbandoned().
  std::pair<std::uint32_t, SentChunk*> takeRetransmit(std::size_t maxPayload, Timestamp now,
                                                      bool partialReliability);

  /// Partial reliability (RFC 3758 3.5): the Advanced.Peer.Ack.Point, i.e. the highest TSN such that every TSN
  /// from the cumulative ack up to it is abandoned or a gap-acked whole message (a gap-acked fragment of an
  /// unfinished message stops it). Ahead of cumTsnAck() means a FORWARD-TSN is needed.
  [[nodiscard]] std::uint32_t advancedPeerAckPoint() const noexcept;
  /// The FORWARD-TSN skip list for TSNs up to advancedPeerAckPoint(): the highest abandoned ordered SSN/MID per
  /// stream (and, with I-DATA, per unordered stream).
  void forwardTsnSkips(bool idata, std::vector<ForwardTsnChunk::Skip>& out) const;
  /// Messages abandoned since last cleared (stream and payload identity): the send queue drops their unsent rest.
  std::vector<std::pair<std::uint16_t, const std::uint8_t*>>& abandonedMessages() noexcept { return abandoned_; }
  /// Abandons every sent fragment of a message (identified by stream and payload block, as above).
  void abandonMessage(std::uint16_t stream, const std::uint8_t* payloadId);
  /// Timed reliability (RFC 3758 4.1): abandons every unacknowledged message whose lifetime has ended, in flight
  /// or not, so a lost one is skipped at its expiry rather than when its loss is detected (up to an RTO later,
  /// holding back the ordered messages behind it).
  void expire(Timestamp now);
  /// The earliest lifetime end among unacknowledged chunks (may be stale-early, never late), or kNever.
  [[nodiscard]] Timestamp nextExpiry() const noexcept { return nextExpiry_; }

  [[nodiscard]] std::size_t flightBytes() const noexcept { return flight_; }
  [[nodiscard]] bool empty() const noexcept { return q_.empty(); }
  [[nodiscard]] std::size_t outstanding() const noexcept { return q_.size(); }
  [[nodiscard]] std::uint32_t cumTsnAck() const noexcept { return base_ - 1; }
  [[nodiscard]] std::uint32_t nextTsn() const noexcept { return base_ + static_cast<std::uint32_t>(q_.size()); }
  [[nodiscard]] bool inFastRecovery() const noexcept { return fastRecovery_; }
  /// Bytes acknowledged so far (cumulative + gap), for delivery-rate estimation.
  [[nodiscard]] std::uint64_t delivered() const noexcept { return delivered_; }
  void shrink() noexcept { q_.shrink(); }

  [[nodiscard]] std::size_t chunkSize(const Fragment& f) const noexcept { return f.length + header_; }

 private:
  void ack(SentChunk& c, Timestamp now, SackOutcome& out, bool& sampled);
  void markLost(SentChunk& c, SackOutcome& out);

  RingBuffer<SentChunk> q_;  // q_[i] has TSN base_ + i
  std::uint32_t base_ = 0;   // lowest unacknowledged TSN
  std::size_t flight_ = 0;
  std::size_t header_ = DataChunk::kDataHeader;
  std::size_t retransmitCount_ = 0;
  std::uint64_t delivered_ = 0;
  Timestamp deliveredTime_{};
  bool fastRecovery_ = false;
  std::uint32_t fastRecoveryExit_ = 0;  // highest TSN outstanding when fast recovery began
  Timestamp latestAckedSentAt_{};       // RACK: send time of the most recently sent chunk acknowledged
  std::vector<std::pair<std::uint16_t, const std::uint8_t*>> abandoned_;
  Timestamp nextExpiry_ = kNever;
};

}  // namespace rtcpeer::sctp
