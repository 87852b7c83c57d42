// Which TSNs have arrived (RFC 9260 6.2): the cumulative TSN, the ranges received above it (gap ack blocks),
// duplicates to report, and when a SACK is due: at once when the sequence has holes or a duplicate arrived,
// otherwise after every second packet with DATA or when the delayed-ack timer fires (6.2, "delayed ack").
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "common/bytes.hpp"
#include "sctp/packet/chunks.hpp"

namespace rtcpeer::sctp {

class DataTracker {
 public:
  enum class Verdict : std::uint8_t { New, Duplicate, Rejected };

  void reset(std::uint32_t peerInitialTsn);
  /// Records the TSN of a received DATA chunk. Rejected: too far ahead (or too fragmented) to track.
  Verdict observe(std::uint32_t tsn);
  /// Call once per received packet that carried DATA (after observing its chunks).
  void onDataPacket() noexcept { ++packetsSinceSack_; }
  /// FORWARD-TSN (RFC 3758 3.6): moves the cumulative TSN forward. False (nothing changed) when it is not ahead or
  /// too far ahead to be a TSN the peer can have sent: then the caller must not skip anything either.
  bool forwardTo(std::uint32_t newCum);

  [[nodiscard]] std::uint32_t cumTsn() const noexcept { return cum_; }
  /// A 64-bit TSN that orders correctly across wrap-around (relative to the cumulative TSN).
  [[nodiscard]] std::uint64_t unwrap(std::uint32_t tsn) const noexcept {
    return cum64_ + static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<std::int32_t>(tsn - cum_)));
  }
  [[nodiscard]] bool sackPending() const noexcept { return immediate_ || packetsSinceSack_ > 0; }
  [[nodiscard]] bool sackDue() const noexcept { return immediate_ || packetsSinceSack_ >= 2; }
  void requestImmediateSack() noexcept { immediate_ = true; }
  [[nodiscard]] bool hasGaps() const noexcept { return !ranges_.empty(); }
  /// Writes a SACK that fits in `w` and clears the pending state.
  void writeSack(SpanWriter& w, std::uint32_t arwnd);
  [[nodiscard]] std::size_t sackSize() const noexcept {
    return 16 + 4 * std::min<std::size_t>(ranges_.size(), kMaxGapBlocks) + 4 * dups_.size();
  }

  static constexpr std::size_t kMaxGapBlocks = 128;

 private:
  static constexpr std::uint32_t kMaxAhead = 1u << 20;  // TSNs further ahead are dropped, not tracked
  static constexpr std::size_t kMaxRanges = 4096;
  static constexpr std::size_t kMaxDups = 16;

  std::uint32_t cum_ = 0;
  std::uint64_t cum64_ = 1ull << 32;  // starts mid-range so unwrap() never underflows
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges_;  // received [first, last] above cum_+1, sorted
  std::vector<std::uint32_t> dups_;
  std::vector<GapBlock> gapScratch_;
  std::uint32_t packetsSinceSack_ = 0;
  bool immediate_ = false;
};

}  // namespace rtcpeer::sctp
