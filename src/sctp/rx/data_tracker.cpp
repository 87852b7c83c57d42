#include "sctp/rx/data_tracker.hpp"

#include <algorithm>

namespace rtcpeer::sctp {

void DataTracker::reset(std::uint32_t peerInitialTsn) {
  cum_ = peerInitialTsn - 1;
  cum64_ = 1ull << 32;
  ranges_.clear();
  dups_.clear();
  packetsSinceSack_ = 0;
  immediate_ = false;
}

DataTracker::Verdict DataTracker::observe(std::uint32_t tsn) {
  if (tsnLessEq(tsn, cum_)) {
    if (dups_.size() < kMaxDups) dups_.push_back(tsn);
    immediate_ = true;  // RFC 9260 6.2: report duplicates at once
    return Verdict::Duplicate;
  }
  if (tsn - cum_ > kMaxAhead) return Verdict::Rejected;
  bool hadGaps = !ranges_.empty();
  if (tsn == cum_ + 1) {
    ++cum_;
    ++cum64_;
    if (!ranges_.empty() && ranges_.front().first == cum_ + 1) {
      cum64_ += ranges_.front().second - cum_;
      cum_ = ranges_.front().second;
      ranges_.erase(ranges_.begin());
    }
  } else {
    // First range whose end is not below tsn - 1 (so it may absorb tsn).
    auto it = std::lower_bound(ranges_.begin(), ranges_.end(), tsn,
                               [](const auto& r, std::uint32_t t) { return tsnLess(r.second + 1, t); });
    if (it != ranges_.end() && tsnLessEq(it->first, tsn) && tsnLessEq(tsn, it->second)) {
      if (dups_.size() < kMaxDups) dups_.push_back(tsn);
      immediate_ = true;
      return Verdict::Duplicate;
    }
    if (it != ranges_.end() && it->second + 1 == tsn) {
      it->second = tsn;
      auto next = it + 1;
      if (next != ranges_.end() && next->first == tsn + 1) {
        it->second = next->second;
        ranges_.erase(next);
      }
    } else if (it != ranges_.end() && it->first == tsn + 1) {
      it->first = tsn;
    } else {
      if (ranges_.size() >= kMaxRanges) return Verdict::Rejected;
      ranges_.insert(it, {tsn, tsn});
    }
  }
  // Out-of-order arrival or a hole just filled: the sender wants to know now (RFC 9260 6.7, 6.2).
  if (hadGaps || !ranges_.empty()) immediate_ = true;
  return Verdict::New;
}

bool DataTracker::forwardTo(std::uint32_t newCum) {
  if (!tsnLess(cum_, newCum) || newCum - cum_ > kMaxAhead) return false;
  cum64_ += newCum - cum_;
  cum_ = newCum;
  while (!ranges_.empty() && tsnLessEq(ranges_.front().first, cum_ + 1)) {
    if (tsnLess(cum_, ranges_.front().second)) {
      cum64_ += ranges_.front().second - cum_;
      cum_ = ranges_.front().second;
    }
    ranges_.erase(ranges_.begin());
  }
  immediate_ = true;
  return true;
}

void DataTracker::writeSack(SpanWriter& w, std::uint32_t arwnd) {
  gapScratch_.clear();
  std::size_t room = w.remaining() > 16 ? (w.remaining() - 16) / 4 : 0;
  std::size_t dups = std::min(dups_.size(), room);
  std::size_t gaps = std::min({ranges_.size(), kMaxGapBlocks, room - dups});
  for (std::size_t i = 0; i < gaps; ++i) {
    std::uint32_t s = ranges_[i].first - cum_, e = ranges_[i].second - cum_;
    if (e > 0xFFFF) break;  // offsets are 16 bit; further ranges are reported once the cum TSN catches up
    gapScratch_.push_back({static_cast<std::uint16_t>(s), static_cast<std::uint16_t>(e)});
  }
  SackChunk::write(w, cum_, arwnd, gapScratch_, std::span<const std::uint32_t>(dups_.data(), dups));
  dups_.clear();
  packetsSinceSack_ = 0;
  immediate_ = false;
}

}  // namespace rtcpeer::sctp
