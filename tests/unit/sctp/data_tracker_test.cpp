// DataTracker alone: which TSNs arrived, the cumulative TSN and gap blocks it reports, duplicates, TSN wrap-around,
// FORWARD-TSN, and when a SACK is due (RFC 9260 6.2, 6.7; RFC 3758 3.6).
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "sctp/packet/chunks.hpp"
#include "sctp/packet/packet.hpp"
#include "sctp/rx/data_tracker.hpp"

namespace rtcpeer::sctp {
namespace {

using Verdict = DataTracker::Verdict;

// The SACK the tracker writes now, parsed back the way the peer would read it.
struct Sack {
  std::uint32_t cum = 0;
  std::uint32_t arwnd = 0;
  std::vector<std::pair<std::uint16_t, std::uint16_t>> gaps;
  std::vector<std::uint32_t> dups;
};

Sack takeSack(DataTracker& t, std::size_t room = 1500, std::uint32_t arwnd = 65536) {
  Bytes buf(room);
  SpanWriter w(buf);
  t.writeSack(w, arwnd);
  EXPECT_TRUE(w.ok());
  const ByteView out = w.written();
  EXPECT_GE(out.size(), 16u);
  EXPECT_EQ(out[0], 3);  // SACK
  EXPECT_EQ(loadBe16(out.data() + 2), out.size());
  auto s = SackChunk::parse(RawChunk{out[0], out[1], out.subspan(4)});
  EXPECT_TRUE(s.ok());
  Sack r;
  if (!s.ok()) return r;
  r.cum = s->cumTsnAck;
  r.arwnd = s->arwnd;
  for (std::size_t i = 0; i < s->gapCount(); ++i) r.gaps.emplace_back(s->gap(i).start, s->gap(i).end);
  for (std::size_t i = 0; i < s->dupCount(); ++i) r.dups.push_back(s->dup(i));
  return r;
}

using Gaps = std::vector<std::pair<std::uint16_t, std::uint16_t>>;

TEST(DataTracker, InOrderArrivalAdvancesCumulativeTsnAndDelaysTheSack) {
  DataTracker t;
  t.reset(100);
  EXPECT_EQ(t.cumTsn(), 99u);
  EXPECT_FALSE(t.sackPending());
  EXPECT_EQ(t.observe(100), Verdict::New);
  t.onDataPacket();
  EXPECT_EQ(t.cumTsn(), 100u);
  // One packet: a SACK is owed but may wait for the delayed-ack timer (RFC 9260 6.2).
  EXPECT_TRUE(t.sackPending());
  EXPECT_FALSE(t.sackDue());
  EXPECT_EQ(t.observe(101), Verdict::New);
  t.onDataPacket();
  // Every second packet with DATA is acknowledged at once.
  EXPECT_TRUE(t.sackDue());
  EXPECT_FALSE(t.hasGaps());
  Sack s = takeSack(t, 1500, 4321);
  EXPECT_EQ(s.cum, 101u);
  EXPECT_EQ(s.arwnd, 4321u);
  EXPECT_TRUE(s.gaps.empty());
  EXPECT_TRUE(s.dups.empty());
  EXPECT_FALSE(t.sackPending());
  EXPECT_FALSE(t.sackDue());
}

TEST(DataTracker, SeveralChunksInOnePacketCountAsOnePacket) {
  DataTracker t;
  t.reset(1);
  for (std::uint32_t tsn = 1; tsn <= 5; ++tsn) EXPECT_EQ(t.observe(tsn), Verdict::New);
  t.onDataPacket();
  EXPECT_EQ(t.cumTsn(), 5u);
  EXPECT_TRUE(t.sackPending());
  EXPECT_FALSE(t.sackDue());
}

TEST(DataTracker, HolesAreReportedAsGapBlocksAtOnce) {
  DataTracker t;
  t.reset(1);
  EXPECT_EQ(t.observe(1), Verdict::New);
  t.onDataPacket();
  EXPECT_FALSE(t.sackDue());
  EXPECT_EQ(t.observe(3), Verdict::New);
  t.onDataPacket();
  // Out of order: the sender learns of the hole immediately (RFC 9260 6.7).
  EXPECT_TRUE(t.sackDue());
  EXPECT_TRUE(t.hasGaps());
  EXPECT_EQ(t.observe(4), Verdict::New);
  EXPECT_EQ(t.observe(6), Verdict::New);
  EXPECT_EQ(t.observe(9), Verdict::New);
  EXPECT_EQ(t.observe(8), Verdict::New);  // joins the range 9 from below
  EXPECT_EQ(t.cumTsn(), 1u);
  EXPECT_EQ(t.sackSize(), 16u + 3 * 4);
  Sack s = takeSack(t);
  EXPECT_EQ(s.cum, 1u);
  EXPECT_EQ(s.gaps, (Gaps{{2, 3}, {5, 5}, {7, 8}}));
  // Filling the first hole merges the cumulative TSN with the range above it, and is reported at once too.
  EXPECT_FALSE(t.sackPending());
  EXPECT_EQ(t.observe(2), Verdict::New);
  EXPECT_TRUE(t.sackDue());
  EXPECT_EQ(t.cumTsn(), 4u);
  s = takeSack(t);
  EXPECT_EQ(s.cum, 4u);
  EXPECT_EQ(s.gaps, (Gaps{{2, 2}, {4, 5}}));
  // A TSN between two ranges joins them into one.
  EXPECT_EQ(t.observe(7), Verdict::New);
  EXPECT_EQ(t.observe(5), Verdict::New);
  EXPECT_EQ(t.cumTsn(), 9u);
  EXPECT_FALSE(t.hasGaps());
  s = takeSack(t);
  EXPECT_EQ(s.cum, 9u);
  EXPECT_TRUE(s.gaps.empty());
}

TEST(DataTracker, DuplicatesAreReportedOnceAndTriggerAnImmediateSack) {
  DataTracker t;
  t.reset(10);
  EXPECT_EQ(t.observe(10), Verdict::New);
  EXPECT_EQ(t.observe(12), Verdict::New);
  takeSack(t);
  // Below the cumulative TSN (a retransmission that crossed our SACK) and inside a gap-acked range.
  EXPECT_EQ(t.observe(10), Verdict::Duplicate);
  EXPECT_TRUE(t.sackDue());
  EXPECT_EQ(t.observe(12), Verdict::Duplicate);
  EXPECT_EQ(t.observe(5), Verdict::Duplicate);
  EXPECT_EQ(t.cumTsn(), 10u);
  Sack s = takeSack(t);
  EXPECT_EQ(s.dups, (std::vector<std::uint32_t>{10, 12, 5}));
  EXPECT_EQ(s.gaps, (Gaps{{2, 2}}));
  // Reported once: the next SACK has none.
  EXPECT_TRUE(takeSack(t).dups.empty());
}

TEST(DataTracker, DuplicateListIsBounded) {
  DataTracker t;
  t.reset(1);
  EXPECT_EQ(t.observe(1), Verdict::New);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(t.observe(1), Verdict::Duplicate);
  Sack s = takeSack(t);
  EXPECT_FALSE(s.dups.empty());
  EXPECT_LE(s.dups.size(), 16u);
}

TEST(DataTracker, CumulativeTsnWrapsAround) {
  DataTracker t;
  t.reset(0xFFFFFFFEu);
  EXPECT_EQ(t.cumTsn(), 0xFFFFFFFDu);
  std::uint64_t before = t.unwrap(0xFFFFFFFEu);
  EXPECT_EQ(t.observe(0xFFFFFFFEu), Verdict::New);
  EXPECT_EQ(t.observe(0xFFFFFFFFu), Verdict::New);
  EXPECT_EQ(t.observe(0), Verdict::New);
  EXPECT_EQ(t.observe(1), Verdict::New);
  EXPECT_EQ(t.cumTsn(), 1u);
  // Unwrapped TSNs keep counting up across the wrap.
  EXPECT_EQ(t.unwrap(1), before + 3);
  EXPECT_LT(t.unwrap(0xFFFFFFFFu), t.unwrap(0));
  EXPECT_EQ(t.observe(0xFFFFFFFFu), Verdict::Duplicate);
  EXPECT_EQ(takeSack(t).cum, 1u);
}

TEST(DataTracker, GapBlocksAcrossTheWrap) {
  DataTracker t;
  t.reset(0xFFFFFFFFu);
  EXPECT_EQ(t.observe(0xFFFFFFFFu), Verdict::New);
  EXPECT_EQ(t.observe(1), Verdict::New);  // 0 is missing
  EXPECT_EQ(t.observe(2), Verdict::New);
  Sack s = takeSack(t);
  EXPECT_EQ(s.cum, 0xFFFFFFFFu);
  EXPECT_EQ(s.gaps, (Gaps{{2, 3}}));
  EXPECT_EQ(t.observe(0), Verdict::New);
  EXPECT_EQ(t.cumTsn(), 2u);
  EXPECT_FALSE(t.hasGaps());
}

TEST(DataTracker, TsnsFarAheadAreRejectedNotTracked) {
  DataTracker t;
  t.reset(1000);
  EXPECT_EQ(t.observe(1000 + (1u << 20) + 1), Verdict::Rejected);
  EXPECT_FALSE(t.hasGaps());
  EXPECT_EQ(t.observe(1000 + (1u << 20) - 1), Verdict::New);
  EXPECT_TRUE(t.hasGaps());
  // Half the sequence space behind reads as old: a duplicate, never a jump of the cumulative TSN.
  EXPECT_EQ(t.observe(1000u - 0x7FFFFFF0u), Verdict::Duplicate);
  EXPECT_EQ(t.cumTsn(), 999u);
}

TEST(DataTracker, ForwardTsnMovesTheCumulativeTsnAndAbsorbsRanges) {
  DataTracker t;
  t.reset(10);
  EXPECT_EQ(t.observe(10), Verdict::New);
  EXPECT_EQ(t.observe(13), Verdict::New);
  EXPECT_EQ(t.observe(14), Verdict::New);
  EXPECT_EQ(t.observe(17), Verdict::New);
  takeSack(t);
  const std::uint64_t at10 = t.unwrap(10);
  // The sender abandoned 11 and 12 (RFC 3758 3.6): the range 13-14 joins the cumulative TSN.
  t.forwardTo(12);
  EXPECT_EQ(t.cumTsn(), 14u);
  EXPECT_EQ(t.unwrap(14), at10 + 4);
  EXPECT_TRUE(t.sackDue());
  Sack s = takeSack(t);
  EXPECT_EQ(s.cum, 14u);
  EXPECT_EQ(s.gaps, (Gaps{{3, 3}}));
  // A stale FORWARD-TSN (behind the cumulative TSN) changes nothing.
  t.forwardTo(11);
  EXPECT_EQ(t.cumTsn(), 14u);
  EXPECT_FALSE(t.sackPending());
  // One past a range end swallows it whole.
  t.forwardTo(18);
  EXPECT_EQ(t.cumTsn(), 18u);
  EXPECT_FALSE(t.hasGaps());
  EXPECT_EQ(t.observe(16), Verdict::Duplicate);
}

TEST(DataTracker, SackFitsTheRoomGiven) {
  DataTracker t;
  t.reset(1);
  for (std::uint32_t tsn = 3; tsn < 3 + 2 * 50; tsn += 2) EXPECT_EQ(t.observe(tsn), Verdict::New);
  EXPECT_EQ(t.sackSize(), 16u + 50 * 4);
  Sack s = takeSack(t, 16 + 4 * 5);
  EXPECT_EQ(s.cum, 0u);
  EXPECT_EQ(s.gaps.size(), 5u);
  EXPECT_EQ(s.gaps.front(), (std::pair<std::uint16_t, std::uint16_t>{3, 3}));
}

TEST(DataTracker, GapBlocksAreCappedPerSack) {
  DataTracker t;
  t.reset(1);
  for (std::uint32_t i = 0; i < 300; ++i) EXPECT_EQ(t.observe(3 + 2 * i), Verdict::New);
  EXPECT_EQ(t.sackSize(), 16u + DataTracker::kMaxGapBlocks * 4);
  Sack s = takeSack(t, 4000);
  EXPECT_EQ(s.gaps.size(), DataTracker::kMaxGapBlocks);
}

TEST(DataTracker, ImmediateSackOnRequest) {
  DataTracker t;
  t.reset(1);
  EXPECT_FALSE(t.sackDue());
  t.requestImmediateSack();  // e.g. a DATA chunk with the I bit (RFC 7053)
  EXPECT_TRUE(t.sackDue());
  takeSack(t);
  EXPECT_FALSE(t.sackDue());
}

TEST(DataTracker, ResetForgetsEverything) {
  DataTracker t;
  t.reset(1);
  EXPECT_EQ(t.observe(1), Verdict::New);
  EXPECT_EQ(t.observe(5), Verdict::New);
  EXPECT_EQ(t.observe(1), Verdict::Duplicate);
  t.reset(500);
  EXPECT_EQ(t.cumTsn(), 499u);
  EXPECT_FALSE(t.hasGaps());
  EXPECT_FALSE(t.sackPending());
  EXPECT_EQ(t.observe(500), Verdict::New);
  Sack s = takeSack(t);
  EXPECT_EQ(s.cum, 500u);
  EXPECT_TRUE(s.dups.empty());
}

}  // namespace
}  // namespace rtcpeer::sctp
