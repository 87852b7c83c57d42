// RetransmitQueue alone: TSN assignment, SACK processing (cumulative and gap acknowledgements, stale SACKs, TSN
// wrap), RTT samples by Karn's rule, loss by three miss indications and fast recovery (RFC 9260 7.2.4), T3-rtx
// expiry (6.3.3), and partial reliability: retransmission and lifetime limits, the Advanced.Peer.Ack.Point and
// the FORWARD-TSN skip list (RFC 3758 3.5).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sctp/packet/chunks.hpp"
#include "sctp/packet/packet.hpp"
#include "sctp/tx/retransmit_queue.hpp"

namespace rtcpeer::sctp {
namespace {

const Timestamp t0 = Timestamp{} + Duration(1'000'000'000);
constexpr Duration ms(std::int64_t n) { return Duration(n * 1000); }
constexpr std::size_t kLen = 100;
constexpr std::size_t kChunk = kLen + DataChunk::kDataHeader;  // what one fragment counts in flight

// A one-fragment message of kLen bytes.
Fragment message(std::uint16_t stream = 0, std::uint32_t ssn = 0, std::int32_t maxRetransmits = -1,
                 Timestamp expiry = kNever, std::uint8_t flags = DataChunk::kBeginning | DataChunk::kEnding) {
  Fragment f;
  f.data = Payload::copyOf(asBytes(std::string(kLen, 'm')));
  f.length = kLen;
  f.stream = stream;
  f.mid = ssn;
  f.flags = flags;
  f.maxRetransmits = maxRetransmits;
  f.expiry = expiry;
  return f;
}

// Fragments of one message sharing its payload.
std::vector<Fragment> fragments(std::size_t n, std::uint16_t stream, std::uint32_t ssn, std::int32_t maxRetransmits,
                                Timestamp expiry) {
  Payload p = Payload::copyOf(asBytes(std::string(n * kLen, 'f')));
  std::vector<Fragment> out;
  for (std::size_t i = 0; i < n; ++i) {
    Fragment f;
    f.data = p;
    f.offset = static_cast<std::uint32_t>(i * kLen);
    f.length = kLen;
    f.stream = stream;
    f.mid = ssn;
    f.fsn = static_cast<std::uint32_t>(i);
    f.flags = static_cast<std::uint8_t>((i == 0 ? DataChunk::kBeginning : 0) | (i + 1 == n ? DataChunk::kEnding : 0));
    f.maxRetransmits = maxRetransmits;
    f.expiry = expiry;
    out.push_back(f);
  }
  return out;
}

// A SACK as the peer writes it (gap offsets relative to cum).
class Sack {
 public:
  Sack(std::uint32_t cum, std::vector<GapBlock> gaps = {}, std::vector<std::uint32_t> dups = {}) : buf_(1024) {
    SpanWriter w(buf_);
    SackChunk::write(w, cum, 1 << 20, gaps, dups);
    const ByteView out = w.written();
    chunk_ = *SackChunk::parse(RawChunk{out[0], out[1], out.subspan(4)});
  }
  operator const SackChunk&() const { return chunk_; }

 private:
  Bytes buf_;
  SackChunk chunk_;
};

// Sends n one-fragment messages at `at`, returning their TSNs.
std::vector<std::uint32_t> send(RetransmitQueue& q, std::size_t n, Timestamp at) {
  std::vector<std::uint32_t> tsns;
  for (std::size_t i = 0; i < n; ++i) tsns.push_back(q.add(message(0, static_cast<std::uint32_t>(i)), at));
  return tsns;
}

TEST(RetransmitQueue, TsnsAreConsecutiveFromTheInitialTsn) {
  RetransmitQueue q;
  q.reset(1000);
  EXPECT_EQ(q.cumTsnAck(), 999u);
  EXPECT_EQ(q.nextTsn(), 1000u);
  EXPECT_EQ(send(q, 3, t0), (std::vector<std::uint32_t>{1000, 1001, 1002}));
  EXPECT_EQ(q.outstanding(), 3u);
  EXPECT_EQ(q.flightBytes(), 3 * kChunk);
  EXPECT_EQ(q.nextTsn(), 1003u);
}

TEST(RetransmitQueue, CumulativeAckFreesTheFlightAndSamplesRtt) {
  RetransmitQueue q;
  q.reset(1);
  send(q, 3, t0);
  auto out = q.onSack(Sack(2), t0 + ms(40));
  EXPECT_TRUE(out.cumAdvanced);
  EXPECT_EQ(out.bytesAcked, 2 * kChunk);
  EXPECT_EQ(out.flightBeforeSack, 3 * kChunk);
  ASSERT_TRUE(out.rtt);
  EXPECT_EQ(*out.rtt, ms(40));
  EXPECT_EQ(q.cumTsnAck(), 2u);
  EXPECT_EQ(q.outstanding(), 1u);
  EXPECT_EQ(q.flightBytes(), kChunk);
  EXPECT_EQ(q.delivered(), 2 * kChunk);
  EXPECT_FALSE(q.hasRetransmits());
  out = q.onSack(Sack(3), t0 + ms(50));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.flightBytes(), 0u);
}

TEST(RetransmitQueue, GapAckedChunksLeaveTheFlightOnce) {
  RetransmitQueue q;
  q.reset(1);
  send(q, 5, t0);
  // 1 acknowledged cumulatively, 3-4 by a gap block: 2 and 5 are still in flight.
  auto out = q.onSack(Sack(1, {{2, 3}}), t0 + ms(10));
  EXPECT_EQ(out.bytesAcked, 3 * kChunk);
  EXPECT_EQ(q.flightBytes(), 2 * kChunk);
  EXPECT_EQ(q.outstanding(), 4u);
  // The same report again acknowledges nothing new.
  out = q.onSack(Sack(1, {{2, 3}}), t0 + ms(20));
  EXPECT_EQ(out.bytesAcked, 0u);
  EXPECT_FALSE(out.cumAdvanced);
  EXPECT_EQ(q.flightBytes(), 2 * kChunk);
  // Then the cumulative ack passes the gap-acked chunks without counting them twice.
  out = q.onSack(Sack(4), t0 + ms(30));
  EXPECT_EQ(out.bytesAcked, kChunk);
  EXPECT_EQ(q.flightBytes(), kChunk);
  EXPECT_EQ(q.delivered(), 4 * kChunk);
}

TEST(RetransmitQueue, StaleAndImpossibleSacksAreIgnored) {
  RetransmitQueue q;
  q.reset(1);
  send(q, 4, t0);
  q.onSack(Sack(2), t0 + ms(10));
  // A SACK reordered behind a newer one (its cum TSN is behind ours), and one acknowledging a TSN never sent.
  auto out = q.onSack(Sack(1, {{2, 2}}), t0 + ms(20));
  EXPECT_EQ(out.bytesAcked, 0u);
  EXPECT_EQ(q.flightBytes(), 2 * kChunk);
  out = q.onSack(Sack(9), t0 + ms(20));
  EXPECT_EQ(out.bytesAcked, 0u);
  EXPECT_EQ(q.cumTsnAck(), 2u);
  EXPECT_EQ(q.outstanding(), 2u);
}

TEST(RetransmitQueue, GapBeyondWhatWasSentIsIgnored) {
  RetransmitQueue q;
  q.reset(1);
  send(q, 2, t0);
  auto out = q.onSack(Sack(0, {{2, 40}}), t0 + ms(10));
  EXPECT_EQ(out.bytesAcked, kChunk);
  EXPECT_EQ(q.flightBytes(), kChunk);
}

TEST(RetransmitQueue, TsnsWrapAround) {
  RetransmitQueue q;
  q.reset(0xFFFFFFFEu);
  EXPECT_EQ(send(q, 4, t0), (std::vector<std::uint32_t>{0xFFFFFFFEu, 0xFFFFFFFFu, 0, 1}));
  auto out = q.onSack(Sack(0xFFFFFFFEu, {{2, 3}}), t0 + ms(10));
  EXPECT_EQ(out.bytesAcked, 3 * kChunk);
  out = q.onSack(Sack(1), t0 + ms(20));
  EXPECT_TRUE(out.cumAdvanced);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.cumTsnAck(), 1u);
  EXPECT_EQ(q.nextTsn(), 2u);
}

TEST(RetransmitQueue, ThreeMissIndicationsMarkAChunkLost) {
  RetransmitQueue q;
  q.reset(1);
  send(q, 6, t0);
  // TSN 2 is missing; every SACK that newly acknowledges a TSN above it is one miss indication.
  auto out = q.onSack(Sack(1, {{2, 2}}), t0 + ms(10));
  EXPECT_FALSE(q.hasRetransmits());
  out = q.onSack(Sack(1, {{2, 3}}), t0 + ms(11));
  EXPECT_FALSE(q.hasRetransmits());
  EXPECT_FALSE(out.enteredFastRecovery);
  out = q.onSack(Sack(1, {{2, 4}}), t0 + ms(12));
  EXPECT_TRUE(q.hasRetransmits());
  EXPECT_TRUE(out.enteredFastRecovery);
  EXPECT_TRUE(out.inFastRecovery);
  EXPECT_EQ(out.bytesLost, kChunk);
  // Lost chunks leave the flight: 6 is the only one left in it.
  EXPECT_EQ(q.flightBytes(), kChunk);
  auto [tsn, c] = q.takeRetransmit(1000, t0 + ms(13), false);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(tsn, 2u);
  EXPECT_EQ(c->transmissions, 2);
  EXPECT_FALSE(q.hasRetransmits());
  EXPECT_EQ(q.flightBytes(), 2 * kChunk);
  // A fast-retransmitted chunk is not fast-retransmitted again (RFC 9260 7.2.4), however often it is missed: three
  // more SACKs each acknowledge a new TSN above it.
  for (int i = 0; i < 3; ++i) q.add(message(), t0 + ms(13));  // 7, 8, 9
  for (std::uint16_t end : {6, 7, 8}) q.onSack(Sack(1, {{2, end}}), t0 + ms(14));
  EXPECT_FALSE(q.hasRetransmits());
  EXPECT_EQ(q.flightBytes(), kChunk);  // the retransmission of 2
  // The retransmission arrives: fast recovery ends once the cum TSN passes the highest TSN outstanding at its
  // start. Only the retransmitted chunk is newly acknowledged, so there is no RTT sample (Karn's rule).
  out = q.onSack(Sack(9), t0 + ms(30));
  EXPECT_TRUE(out.cumAdvanced);
  EXPECT_EQ(out.bytesAcked, kChunk);
  EXPECT_FALSE(out.inFastRecovery);
  EXPECT_FALSE(q.inFastRecovery());
  EXPECT_FALSE(out.rtt);
  EXPECT_TRUE(q.empty());
}

TEST(RetransmitQueue, RepeatedSacksWithNothingNewAreNotMissIndications) {
  RetransmitQueue q;
  q.reset(1);
  send(q, 4, t0);
  // Duplicated SACKs (the peer's or the network's) report the same hole three times but acknowledge nothing new
  // (RFC 9260 7.2.4: only TSNs below the highest newly acknowledged one count as missed).
  for (int i = 0; i < 5; ++i) q.onSack(Sack(1, {{2, 2}}), t0 + ms(10 + i));
  EXPECT_FALSE(q.hasRetransmits());
  EXPECT_FALSE(q.inFastRecovery());
}

TEST(RetransmitQueue, KarnsRuleNoRttFromRetransmittedChunks) {
  RetransmitQueue q;
  q.reset(1);
  send(q, 1, t0);
  q.onT3Expired();
  auto [tsn, c] = q.takeRetransmit(1000, t0 + ms(1000), false);
  ASSERT_NE(c, nullptr);
  auto out = q.onSack(Sack(1), t0 + ms(1010));
  EXPECT_EQ(out.bytesAcked, kChunk);
  EXPECT_FALSE(out.rtt);
}

TEST(RetransmitQueue, T3ExpiryMarksEverythingInFlightForRetransmission) {
  RetransmitQueue q;
  q.reset(1);
  send(q, 4, t0);
  q.onSack(Sack(0, {{2, 2}}), t0 + ms(10));  // 2 gap-acked
  q.onT3Expired();
  EXPECT_EQ(q.flightBytes(), 0u);
  EXPECT_TRUE(q.hasRetransmits());
  EXPECT_FALSE(q.inFastRecovery());
  // Retransmitted lowest TSN first; a gap-acknowledged chunk is not resent.
  std::vector<std::uint32_t> resent;
  while (true) {
    auto [tsn, c] = q.takeRetransmit(1000, t0 + ms(1000), false);
    if (c == nullptr) break;
    resent.push_back(tsn);
  }
  EXPECT_EQ(resent, (std::vector<std::uint32_t>{1, 3, 4}));
  EXPECT_EQ(q.flightBytes(), 3 * kChunk);
}

TEST(RetransmitQueue, RetransmissionWaitsForAPacketWithRoom) {
  RetransmitQueue q;
  q.reset(1);
  send(q, 2, t0);
  q.onT3Expired();
  // TSN order is kept: the first chunk does not fit, so the second is not sent ahead of it.
  auto [tsn, c] = q.takeRetransmit(kLen - 1, t0 + ms(1000), false);
  EXPECT_EQ(c, nullptr);
  EXPECT_TRUE(q.hasRetransmits());
  auto [tsn2, c2] = q.takeRetransmit(kLen, t0 + ms(1000), false);
  ASSERT_NE(c2, nullptr);
  EXPECT_EQ(tsn2, 1u);
}

TEST(RetransmitQueue, MaxRetransmitsAbandonsTheMessage) {
  for (std::int32_t limit : {0, 1, 2}) {
    RetransmitQueue q;
    q.reset(1);
    q.add(message(5, 7, limit), t0);
    int retransmissions = 0;
    for (int round = 0; round < 5; ++round) {
      q.onT3Expired();
      auto [tsn, c] = q.takeRetransmit(1000, t0 + ms(1000 * (round + 1)), true);
      if (c == nullptr) break;
      ++retransmissions;
    }
    EXPECT_EQ(retransmissions, limit);
    EXPECT_FALSE(q.hasRetransmits());
    EXPECT_EQ(q.flightBytes(), 0u);
    // Abandoned (RFC 3758 3.5 A1): the Advanced.Peer.Ack.Point moves past it and a FORWARD-TSN names the stream.
    EXPECT_EQ(q.advancedPeerAckPoint(), 1u);
    std::vector<ForwardTsnChunk::Skip> skips;
    q.forwardTsnSkips(false, skips);
    ASSERT_EQ(skips.size(), 1u);
    EXPECT_EQ(skips[0].stream, 5);
    EXPECT_EQ(skips[0].mid, 7u);
    ASSERT_EQ(q.abandonedMessages().size(), 1u);
    EXPECT_EQ(q.abandonedMessages()[0].first, 5);
  }
}

TEST(RetransmitQueue, WithoutPartialReliabilityEverythingIsRetransmitted) {
  RetransmitQueue q;
  q.reset(1);
  q.add(message(0, 0, 0, t0 + ms(1)), t0);
  q.onT3Expired();
  auto [tsn, c] = q.takeRetransmit(1000, t0 + ms(1000), false);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(q.advancedPeerAckPoint(), 0u);
}

TEST(RetransmitQueue, LifetimeAbandonsEveryFragmentInFlightOrNot) {
  RetransmitQueue q;
  q.reset(1);
  const Timestamp expiry = t0 + ms(100);
  for (auto& f : fragments(3, 2, 4, -1, expiry)) q.add(f, t0);
  q.add(message(2, 5), t0);
  EXPECT_EQ(q.nextExpiry(), expiry);
  q.onSack(Sack(1), t0 + ms(20));  // first fragment delivered
  q.expire(t0 + ms(99));
  EXPECT_EQ(q.advancedPeerAckPoint(), 1u);
  EXPECT_EQ(q.flightBytes(), 3 * kChunk);
  q.expire(expiry);
  // Fragments 2 and 3 are abandoned though not known lost (RFC 3758 4.1); the next message is not.
  EXPECT_EQ(q.flightBytes(), kChunk);
  EXPECT_EQ(q.advancedPeerAckPoint(), 3u);
  EXPECT_EQ(q.nextExpiry(), kNever);
  std::vector<ForwardTsnChunk::Skip> skips;
  q.forwardTsnSkips(false, skips);
  ASSERT_EQ(skips.size(), 1u);
  EXPECT_EQ(skips[0].stream, 2);
  EXPECT_EQ(skips[0].mid, 4u);
  // The peer's SACK for the new cumulative TSN then removes them without counting them as delivered.
  const std::uint64_t delivered = q.delivered();
  auto out = q.onSack(Sack(3), t0 + ms(150));
  EXPECT_EQ(out.bytesAcked, 0u);
  EXPECT_EQ(q.delivered(), delivered);
  EXPECT_EQ(q.outstanding(), 1u);
}

TEST(RetransmitQueue, AdvancedPeerAckPointStopsAtTheFirstLiveChunk) {
  RetransmitQueue q;
  q.reset(10);
  q.add(message(1, 0, 0), t0);   // 10: abandoned on loss
  q.add(message(1, 1), t0);      // 11: reliable, lost too
  q.add(message(1, 2, 0), t0);   // 12: abandoned on loss
  q.onT3Expired();
  while (q.takeRetransmit(1000, t0 + ms(1000), true).second != nullptr) {
  }
  EXPECT_EQ(q.advancedPeerAckPoint(), 10u);
  q.onSack(Sack(11), t0 + ms(1100));
  EXPECT_EQ(q.advancedPeerAckPoint(), 12u);
  std::vector<ForwardTsnChunk::Skip> skips;
  q.forwardTsnSkips(false, skips);
  ASSERT_EQ(skips.size(), 1u);
  EXPECT_EQ(skips[0].mid, 2u);  // the highest SSN abandoned on the stream
}

TEST(RetransmitQueue, ForwardTsnSkipsNameUnorderedMessagesOnlyWithIData) {
  RetransmitQueue q;
  q.reset(1);
  const auto BE = static_cast<std::uint8_t>(DataChunk::kBeginning | DataChunk::kEnding);
  q.add(message(3, 9, 0, kNever, BE | DataChunk::kUnordered), t0);
  q.add(message(3, 4, 0, kNever, BE), t0);
  q.onT3Expired();
  while (q.takeRetransmit(1000, t0 + ms(1000), true).second != nullptr) {
  }
  EXPECT_EQ(q.advancedPeerAckPoint(), 2u);
  std::vector<ForwardTsnChunk::Skip> skips;
  // FORWARD-TSN has no place for unordered messages (the new cumulative TSN covers them).
  q.forwardTsnSkips(false, skips);
  ASSERT_EQ(skips.size(), 1u);
  EXPECT_FALSE(skips[0].unordered);
  EXPECT_EQ(skips[0].mid, 4u);
  // I-FORWARD-TSN names both (RFC 8260 2.3).
  q.forwardTsnSkips(true, skips);
  ASSERT_EQ(skips.size(), 2u);
  EXPECT_TRUE(skips[0].unordered);
  EXPECT_EQ(skips[0].mid, 9u);
  EXPECT_FALSE(skips[1].unordered);
}

TEST(RetransmitQueue, AbandonMessageTakesAllItsFragmentsOutOfTheFlight) {
  RetransmitQueue q;
  q.reset(1);
  auto frags = fragments(3, 0, 0, -1, kNever);
  for (auto& f : frags) q.add(f, t0);
  q.onSack(Sack(0, {{2, 2}}), t0 + ms(10));  // the middle fragment arrived
  q.abandonMessage(0, frags[0].data.view().data());
  EXPECT_EQ(q.flightBytes(), 0u);
  EXPECT_EQ(q.advancedPeerAckPoint(), 3u);
  EXPECT_FALSE(q.hasRetransmits());
}

// RFC 3758 3.5 C2: the point passes abandoned chunks, not gap-acked ones of a live message. Passing them told the
// peer to give up the first fragments of a reliable message whose rest was still in flight; dcSCTP drops such
// fragments of unordered messages, and rtcpeer did for both kinds until the soak test found it.
TEST(RetransmitQueue, AdvancedPeerAckPointDoesNotPassGapAckedChunksOfALiveMessage) {
  RetransmitQueue q;
  q.reset(1);
  q.add(message(1, 0, 0), t0);                                   // 1: partially reliable, lost, abandoned
  for (auto& f : fragments(3, 2, 0, -1, kNever)) q.add(f, t0);   // 2-4: a reliable message
  q.onSack(Sack(0, {{2, 3}}), t0 + ms(10));                      // its first two fragments arrived
  q.onT3Expired();
  while (q.takeRetransmit(1000, t0 + ms(1000), true).second != nullptr) {
  }
  EXPECT_EQ(q.advancedPeerAckPoint(), 1u);  // not 3: TSN 4 is still to come
  // Once the peer's cumulative ack covers them, nothing more is skipped.
  q.onSack(Sack(3), t0 + ms(1100));
  EXPECT_EQ(q.advancedPeerAckPoint(), 3u);
}

TEST(RetransmitQueue, TimeBasedLossDetection) {
  RetransmitQueue q;
  q.reset(1);
  q.add(message(), t0);            // 1: lost
  q.add(message(), t0 + ms(50));   // 2: acknowledged, sent 50 ms later
  auto out = q.onSack(Sack(0, {{2, 2}}), t0 + ms(60), ms(20));
  // One SACK is enough when the acknowledged chunk was sent more than the reorder window after the missing one.
  EXPECT_TRUE(q.hasRetransmits());
  EXPECT_EQ(out.bytesLost, kChunk);
  RetransmitQueue q2;
  q2.reset(1);
  q2.add(message(), t0);
  q2.add(message(), t0 + ms(10));
  q2.onSack(Sack(0, {{2, 2}}), t0 + ms(60), ms(20));
  EXPECT_FALSE(q2.hasRetransmits());
}

}  // namespace
}  // namespace rtcpeer::sctp
