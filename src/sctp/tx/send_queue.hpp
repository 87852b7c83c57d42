// Messages waiting to be sent, per stream, and the scheduler that picks the next fragment. Stream state is
// created on first use (an association with 65535 negotiated streams costs nothing until they carry data).
// Scheduling is round robin across streams at message boundaries (DATA forbids interleaving fragments of
// different messages, RFC 9260 6.9); with I-DATA (RFC 8260) it rotates after every fragment.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/result.hpp"
#include "common/time.hpp"
#include "sctp/tx/payload.hpp"

namespace rtcpeer::sctp {

/// One fragment handed from the send queue to the retransmission queue.
struct Fragment {
  Payload data;  // the whole message; this fragment is [offset, offset + length)
  std::uint32_t offset = 0;
  std::uint32_t length = 0;
  std::uint16_t stream = 0;
  std::uint8_t flags = 0;  // DataChunk::kBeginning | kEnding | kUnordered
  std::uint32_t mid = 0;   // SSN (DATA) or MID (I-DATA)
  std::uint32_t fsn = 0;
  std::uint32_t ppid = 0;
  // Partial reliability (RFC 3758), carried per message so a later FORWARD-TSN sender can abandon it.
  std::int32_t maxRetransmits = -1;  // -1: unlimited
  Timestamp expiry = kNever;
};

class SendQueue {
 public:
  struct Limits {
    std::int32_t maxRetransmits = -1;
    Timestamp expiry = kNever;
  };

  void add(std::uint16_t stream, std::uint32_t ppid, ByteView payload, bool unordered, Limits limits);
  [[nodiscard]] bool empty() const noexcept { return active_.empty(); }
  /// The next fragment with at most maxPayload bytes (> 0), or nothing if the queue is empty. A message whose
  /// lifetime has ended is dropped instead: before its first fragment once it has been offered to a sending
  /// opportunity (see markOffered()), part-sent only with `abandonPartial` (the peer supports FORWARD-TSN), and
  /// then reported through expiredPartial().
  std::optional<Fragment> produce(std::size_t maxPayload, bool idata, Timestamp now, bool abandonPartial);
  /// Part-sent messages dropped by produce() since last cleared (stream, payload identity): their sent fragments
  /// must be abandoned (RFC 3758) so the peer skips them.
  std::vector<std::pair<std::uint16_t, const std::uint8_t*>>& expiredPartial() noexcept { return expiredPartial_; }
  /// Ends a sending opportunity: every message queued so far has now been offered to the network once. A message
  /// whose lifetime ran out before it was ever offered is still sent (when the windows allow): the application
  /// queues between polls and we transmit only in them, so a lifetime shorter than the poll interval (Godot's
  /// WebRTCMultiplayer uses 1 ms) must not make a channel drop everything. Browsers send on their network thread
  /// at once, so there too a message is always tried once.
  void markOffered() noexcept { offeredBelow_ = ++generation_; }
  /// Bytes the peer would need for the next fragment (to check the receiver window before producing).
  [[nodiscard]] std::size_t nextFragmentSize(std::size_t maxPayload) const noexcept;

  [[nodiscard]] std::size_t bufferedAmount(std::uint16_t stream) const noexcept;
  [[nodiscard]] std::size_t totalBufferedAmount() const noexcept { return total_; }
  /// Drops the unsent rest of a partly sent message (its sent fragments were abandoned, RFC 3758).
  void discardPartial(std::uint16_t stream, const std::uint8_t* payloadId);
  /// Stream reset (RFC 6525): the listed streams (all if empty) restart their sequence numbers at 0.
  void resetStreams(std::span<const std::uint16_t> streams);
  /// Forgets every queued message and sequence number (association restart).
  void clear();
  [[nodiscard]] std::size_t streamCount() const noexcept { return streams_.size(); }
  /// The streams that have state (carried or hold data since their last reset), ascending.
  [[nodiscard]] std::vector<std::uint16_t> streamIds() const;
  /// Messages dropped because their lifetime ran out (before or, see produce(), while being sent).
  [[nodiscard]] std::uint64_t expired() const noexcept { return expired_; }

 private:
  struct Message {
    Payload data;
    std::uint32_t ppid = 0;
    std::uint32_t offset = 0;
    std::uint32_t mid = 0;
    std::uint32_t nextFsn = 0;
    bool unordered = false;
    Limits limits;
    std::uint64_t generation = 0;  // the sending opportunity it was queued in (markOffered())
  };
  struct Stream {
    std::deque<Message> queue;
    std::uint32_t nextOrdered = 0;    // SSN / ordered MID
    std::uint32_t nextUnordered = 0;  // unordered MID (I-DATA)
    std::size_t buffered = 0;
  };

  void finishFront(Stream& s, std::uint16_t id, bool rotate);

  std::unordered_map<std::uint16_t, Stream> streams_;
  std::vector<std::uint16_t> active_;  // streams with queued messages, in round-robin order
  std::size_t cursor_ = 0;             // index into active_ of the stream being served
  std::size_t total_ = 0;
  std::uint64_t expired_ = 0;
  std::uint64_t generation_ = 0;    // count of markOffered() calls
  std::uint64_t offeredBelow_ = 0;  // messages of an older generation have been offered
  std::vector<std::pair<std::uint16_t, const std::uint8_t*>> expiredPartial_;
};

}  // namespace rtcpeer::sctp
