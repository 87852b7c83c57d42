// SendQueue alone: fragmentation at the largest payload a packet has room for, sequence numbers (SSN for DATA,
// ordered and unordered MIDs for I-DATA), round robin between streams (at message boundaries for DATA, RFC 9260
// 6.9; per fragment for I-DATA, RFC 8260), message lifetimes (RFC 3758), buffered amounts and stream resets.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sctp/packet/chunks.hpp"
#include "sctp/tx/send_queue.hpp"

namespace rtcpeer::sctp {
namespace {

constexpr std::uint8_t B = DataChunk::kBeginning, E = DataChunk::kEnding, U = DataChunk::kUnordered;
const Timestamp t0 = Timestamp{} + Duration(1'000'000'000);

std::string bytesOf(const Fragment& f) {
  return std::string(asString(f.data.view().subspan(f.offset, f.length)));
}

// The next fragment as "stream/mid/fsn:bytes".
std::string next(SendQueue& q, std::size_t maxPayload, bool idata, Timestamp now = t0) {
  auto f = q.produce(maxPayload, idata, now, true);
  if (!f) return "none";
  return std::to_string(f->stream) + "/" + std::to_string(f->mid) + "/" + std::to_string(f->fsn) + ":" + bytesOf(*f);
}

TEST(SendQueue, EmptyQueueProducesNothing) {
  SendQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.produce(1000, false, t0, true));
  EXPECT_EQ(q.nextFragmentSize(1000), 0u);
  EXPECT_EQ(q.totalBufferedAmount(), 0u);
}

TEST(SendQueue, MessagesAreFragmentedAtTheRoomGiven) {
  SendQueue q;
  const std::string msg(2500, 'x');
  q.add(3, 51, asBytes(msg), false, {});
  EXPECT_EQ(q.nextFragmentSize(1000), 1000u);
  std::vector<Fragment> frags;
  while (auto f = q.produce(1000, false, t0, true)) frags.push_back(*f);
  ASSERT_EQ(frags.size(), 3u);
  EXPECT_EQ(frags[0].flags, B);
  EXPECT_EQ(frags[1].flags, 0);
  EXPECT_EQ(frags[2].flags, E);
  std::string joined;
  for (const auto& f : frags) {
    EXPECT_EQ(f.stream, 3);
    EXPECT_EQ(f.ppid, 51u);
    EXPECT_EQ(f.mid, 0u);
    EXPECT_EQ(f.offset, joined.size());
    // Every fragment refers to the message's one copy of the bytes.
    EXPECT_EQ(f.data.view().data(), frags[0].data.view().data());
    joined += bytesOf(f);
  }
  EXPECT_EQ(frags[2].length, 500u);
  EXPECT_EQ(joined, msg);
  EXPECT_TRUE(q.empty());
}

TEST(SendQueue, RoomMayChangeBetweenFragments) {
  SendQueue q;
  q.add(0, 51, asBytes("abcdefghij"), false, {});
  EXPECT_EQ(next(q, 3, false), "0/0/0:abc");
  EXPECT_EQ(q.nextFragmentSize(100), 7u);
  EXPECT_EQ(next(q, 5, false), "0/0/1:defgh");
  EXPECT_EQ(next(q, 100, false), "0/0/2:ij");
}

TEST(SendQueue, SmallMessageIsOneFragment) {
  SendQueue q;
  q.add(1, 53, asBytes("hi"), true, {});
  auto f = q.produce(1000, false, t0, true);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->flags, B | E | U);
  EXPECT_EQ(f->ppid, 53u);
  EXPECT_EQ(bytesOf(*f), "hi");
}

TEST(SendQueue, SequenceNumbersPerStream) {
  SendQueue q;
  q.add(1, 51, asBytes("a"), false, {});
  q.add(1, 51, asBytes("u"), true, {});
  q.add(1, 51, asBytes("b"), false, {});
  q.add(2, 51, asBytes("c"), false, {});
  // DATA: ordered messages count SSNs per stream; an unordered one carries 0 and takes no SSN.
  EXPECT_EQ(next(q, 100, false), "1/0/0:a");
  EXPECT_EQ(next(q, 100, false), "2/0/0:c");
  EXPECT_EQ(next(q, 100, false), "1/0/0:u");
  EXPECT_EQ(next(q, 100, false), "1/1/0:b");
}

TEST(SendQueue, IDataCountsUnorderedMidsSeparately) {
  SendQueue q;
  q.add(1, 51, asBytes("a"), false, {});
  q.add(1, 51, asBytes("u"), true, {});
  q.add(1, 51, asBytes("v"), true, {});
  q.add(1, 51, asBytes("b"), false, {});
  EXPECT_EQ(next(q, 100, true), "1/0/0:a");
  EXPECT_EQ(next(q, 100, true), "1/0/0:u");
  EXPECT_EQ(next(q, 100, true), "1/1/0:v");
  EXPECT_EQ(next(q, 100, true), "1/1/0:b");
}

TEST(SendQueue, DataRoundRobinAtMessageBoundaries) {
  SendQueue q;
  q.add(1, 51, asBytes("AAaa"), false, {});
  q.add(1, 51, asBytes("BBbb"), false, {});
  q.add(2, 51, asBytes("CCcc"), false, {});
  q.add(3, 51, asBytes("D"), false, {});
  // DATA must not interleave fragments of different messages (RFC 9260 6.9): a stream keeps the turn until its
  // message is out, then the next stream goes.
  const std::vector<std::string> want = {"1/0/0:AA", "1/0/1:aa", "2/0/0:CC", "2/0/1:cc", "3/0/0:D",
                                         "1/1/0:BB", "1/1/1:bb", "none"};
  for (const auto& w : want) EXPECT_EQ(next(q, 2, false), w);
}

TEST(SendQueue, IDataRoundRobinPerFragment) {
  SendQueue q;
  q.add(1, 51, asBytes("AAaa"), false, {});
  q.add(2, 51, asBytes("CCcc"), false, {});
  q.add(1, 51, asBytes("BB"), false, {});
  // I-DATA interleaves: a large message on one stream does not hold up the others.
  const std::vector<std::string> want = {"1/0/0:AA", "2/0/0:CC", "1/0/1:aa", "2/0/1:cc", "1/1/0:BB", "none"};
  for (const auto& w : want) EXPECT_EQ(next(q, 2, true), w);
}

TEST(SendQueue, NewStreamJoinsTheRotation) {
  SendQueue q;
  q.add(1, 51, asBytes("a1"), false, {});
  q.add(1, 51, asBytes("a2"), false, {});
  EXPECT_EQ(next(q, 100, false), "1/0/0:a1");
  q.add(2, 51, asBytes("b1"), false, {});
  EXPECT_EQ(next(q, 100, false), "1/1/0:a2");
  EXPECT_EQ(next(q, 100, false), "2/0/0:b1");
}

TEST(SendQueue, BufferedAmountFollowsWhatIsSent) {
  SendQueue q;
  q.add(1, 51, asBytes(std::string(300, 'a')), false, {});
  q.add(2, 51, asBytes(std::string(50, 'b')), false, {});
  EXPECT_EQ(q.bufferedAmount(1), 300u);
  EXPECT_EQ(q.bufferedAmount(2), 50u);
  EXPECT_EQ(q.bufferedAmount(9), 0u);
  EXPECT_EQ(q.totalBufferedAmount(), 350u);
  ASSERT_TRUE(q.produce(100, false, t0, true));
  EXPECT_EQ(q.bufferedAmount(1), 200u);
  EXPECT_EQ(q.totalBufferedAmount(), 250u);
  while (q.produce(100, false, t0, true)) {
  }
  EXPECT_EQ(q.bufferedAmount(1), 0u);
  EXPECT_EQ(q.bufferedAmount(2), 0u);
  EXPECT_EQ(q.totalBufferedAmount(), 0u);
}

TEST(SendQueue, ExpiredMessageIsDroppedBeforeItsFirstByte) {
  SendQueue q;
  q.add(1, 51, asBytes("late"), false, {.maxRetransmits = -1, .expiry = t0 + Duration(100'000)});
  q.add(1, 51, asBytes("ok"), false, {});
  q.markOffered();  // a sending opportunity passed them by (no window)
  const Timestamp later = t0 + Duration(100'000);
  // Nothing was sent, so nothing needs abandoning: no SSN is used and nothing is reported.
  EXPECT_EQ(next(q, 100, false, later), "1/0/0:ok");
  EXPECT_EQ(q.expired(), 1u);
  EXPECT_TRUE(q.expiredPartial().empty());
  EXPECT_EQ(q.totalBufferedAmount(), 0u);
}

TEST(SendQueue, PartlySentMessageExpiresOnlyWhenThePeerCanSkipIt) {
  for (bool abandonPartial : {false, true}) {
    SendQueue q;
    const Timestamp expiry = t0 + Duration(100'000);
    q.add(4, 51, asBytes("aabbcc"), false, {.maxRetransmits = -1, .expiry = expiry});
    q.add(4, 51, asBytes("next"), false, {});
    auto first = q.produce(2, false, t0, abandonPartial);
    ASSERT_TRUE(first);
    auto f = q.produce(100, false, expiry, abandonPartial);
    ASSERT_TRUE(f);
    if (!abandonPartial) {
      // Without FORWARD-TSN the peer cannot skip a message: the rest is sent.
      EXPECT_EQ(bytesOf(*f), "bbcc");
      EXPECT_EQ(q.expired(), 0u);
      continue;
    }
    EXPECT_EQ(bytesOf(*f), "next");
    EXPECT_EQ(f->mid, 1u);
    EXPECT_EQ(q.expired(), 1u);
    ASSERT_EQ(q.expiredPartial().size(), 1u);
    EXPECT_EQ(q.expiredPartial()[0].first, 4);
    EXPECT_EQ(q.expiredPartial()[0].second, first->data.view().data());
    EXPECT_EQ(q.totalBufferedAmount(), 0u);
  }
}

TEST(SendQueue, LimitsTravelWithEveryFragment) {
  SendQueue q;
  const Timestamp expiry = t0 + Duration(5'000'000);
  q.add(2, 51, asBytes("abcd"), false, {.maxRetransmits = 3, .expiry = expiry});
  for (int i = 0; i < 2; ++i) {
    auto f = q.produce(2, false, t0, true);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->maxRetransmits, 3);
    EXPECT_EQ(f->expiry, expiry);
  }
}

TEST(SendQueue, DiscardPartialDropsTheUnsentRest) {
  SendQueue q;
  q.add(1, 51, asBytes("aabbcc"), false, {});
  q.add(1, 51, asBytes("dd"), false, {});
  q.add(2, 51, asBytes("ee"), false, {});
  auto f = q.produce(2, false, t0, true);
  ASSERT_TRUE(f);
  EXPECT_EQ(q.bufferedAmount(1), 6u);
  // The sent fragment was abandoned (e.g. its retransmission limit): the rest of its message goes too.
  q.discardPartial(1, f->data.view().data());
  EXPECT_EQ(q.bufferedAmount(1), 2u);
  EXPECT_EQ(next(q, 2, false), "2/0/0:ee");
  EXPECT_EQ(next(q, 2, false), "1/1/0:dd");
  // A payload that is not the stream's partly sent message changes nothing.
  q.add(3, 51, asBytes("ff"), false, {});
  q.discardPartial(3, f->data.view().data());
  EXPECT_EQ(q.bufferedAmount(3), 2u);
}

TEST(SendQueue, StreamResetRestartsSequenceNumbers) {
  SendQueue q;
  q.add(1, 51, asBytes("a"), false, {});
  q.add(2, 51, asBytes("b"), false, {});
  EXPECT_EQ(next(q, 100, false), "1/0/0:a");
  EXPECT_EQ(next(q, 100, false), "2/0/0:b");
  EXPECT_EQ(q.streamIds(), (std::vector<std::uint16_t>{1, 2}));
  const std::uint16_t streams[] = {1};
  q.resetStreams(streams);
  // A reset stream with nothing queued keeps no state.
  EXPECT_EQ(q.streamIds(), (std::vector<std::uint16_t>{2}));
  q.add(1, 51, asBytes("c"), false, {});
  q.add(2, 51, asBytes("d"), false, {});
  EXPECT_EQ(next(q, 100, false), "1/0/0:c");
  EXPECT_EQ(next(q, 100, false), "2/1/0:d");
}

TEST(SendQueue, SsnWrapsAt16Bits) {
  SendQueue q;
  for (std::uint32_t i = 0; i < 65537; ++i) {
    q.add(0, 51, asBytes("x"), false, {});
    auto f = q.produce(100, false, t0, true);
    ASSERT_TRUE(f);
    if (i >= 65534) {
      EXPECT_EQ(f->mid, i & 0xFFFF) << i;
    }
  }
}

TEST(SendQueue, ClearForgetsEverything) {
  SendQueue q;
  q.add(1, 51, asBytes("a"), false, {});
  q.add(2, 51, asBytes("b"), false, {});
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.totalBufferedAmount(), 0u);
  EXPECT_EQ(q.streamCount(), 0u);
  q.add(1, 51, asBytes("c"), false, {});
  EXPECT_EQ(next(q, 100, false), "1/0/0:c");
}

// The application queues between polls: a message whose lifetime ran out before any sending opportunity is still
// sent once (SendQueue::markOffered).
TEST(SendQueue, ExpiredMessageNeverOfferedIsStillSentOnce) {
  SendQueue q;
  q.add(1, 51, asBytes("late"), false, {.maxRetransmits = -1, .expiry = t0 + Duration(1'000)});
  const Timestamp later = t0 + Duration(16'000);
  EXPECT_EQ(next(q, 100, false, later), "1/0/0:late");
  EXPECT_EQ(q.expired(), 0u);
}

}  // namespace
}  // namespace rtcpeer::sctp
