// Stream reset (RFC 6525) as data channels use it: close = reset the outgoing stream, the peer resets its side,
// and the stream id can be reused with sequence numbers starting over.
#include <gtest/gtest.h>

#include "harness.hpp"

namespace rtcpeer::sctp {
namespace {

using testing::DirectPair;
using testing::payloadFor;
using testing::testOptions;

const StreamReset* find(const std::vector<StreamReset>& rs, bool incoming) {
  for (const auto& r : rs)
    if (r.incoming == incoming) return &r;
  return nullptr;
}

TEST(StreamReset, ResetAfterQueuedDataThenReuse) {
  for (std::uint64_t seed : {1, 2, 3, 4}) {
    DirectPair p(testOptions(), testOptions(), seed);
    ASSERT_TRUE(p.connect());
    SeededRandom loss(seed);
    p.drop = [&](bool, ByteView) { return loss.unit() < 0.2; };
    // Ordered messages on stream 3, then reset it while they are still queued.
    for (std::uint32_t i = 0; i < 20; ++i) ASSERT_TRUE(p.a.send(3, i, payloadFor(i, 3000), {}, p.now).ok());
    std::uint16_t s3 = 3;
    ASSERT_TRUE(p.a.resetStreams(std::span(&s3, 1), p.now).ok());
    EXPECT_FALSE(p.a.send(3, 99, asBytes("x"), {}, p.now).ok());  // closing: no new data
    ASSERT_TRUE(p.runUntil([&] { return find(p.resetsA, false) && find(p.resetsB, true); },
                           Duration(60'000'000)))
        << "seed " << seed;
    // Every message sent before the reset arrived, in order, before the peer saw the reset.
    ASSERT_EQ(p.messagesB.size(), 20u);
    for (std::uint32_t i = 0; i < 20; ++i) EXPECT_EQ(p.messagesB[i].ppid, i);
    auto* in = find(p.resetsB, true);
    ASSERT_EQ(in->streams.size(), 1u);
    EXPECT_EQ(in->streams[0], 3);
    EXPECT_FALSE(find(p.resetsA, false)->refused);
    EXPECT_FALSE(find(p.resetsB, false));
    // The peer closes its side too (RFC 8831 6.7), then the stream is reused: SSNs start at 0 again.
    ASSERT_TRUE(p.b.resetStreams(std::span(&s3, 1), p.now).ok());
    ASSERT_TRUE(p.runUntil([&] { return find(p.resetsA, true) != nullptr; },
                           Duration(60'000'000)));
    for (std::uint32_t i = 100; i < 110; ++i) ASSERT_TRUE(p.a.send(3, i, payloadFor(i, 500), {}, p.now).ok());
    ASSERT_TRUE(p.runUntil([&] { return p.messagesB.size() == 30; }, Duration(60'000'000)));
    for (std::uint32_t i = 0; i < 10; ++i) EXPECT_EQ(p.messagesB[20 + i].ppid, 100 + i);
    EXPECT_EQ(p.a.state(), State::Established);
  }
}

TEST(StreamReset, RejectedWithoutEstablishedAssociation) {
  DirectPair p;
  std::uint16_t s = 1;
  EXPECT_FALSE(p.a.resetStreams(std::span(&s, 1), p.now).ok());
  ASSERT_TRUE(p.connect());
  EXPECT_FALSE(p.a.resetStreams({}, p.now).ok());
  EXPECT_TRUE(p.a.resetStreams(std::span(&s, 1), p.now).ok());
}

TEST(StreamReset, ManyStreamsAndSeveralRequestsInSequence) {
  DirectPair p;
  ASSERT_TRUE(p.connect());
  std::vector<std::uint16_t> first = {1, 2, 3}, second = {4, 5};
  for (auto s : first) ASSERT_TRUE(p.a.send(s, s, asBytes("a"), {}, p.now).ok());
  ASSERT_TRUE(p.a.resetStreams(first, p.now).ok());
  p.flush();  // the first request goes out once the queued data is sent
  ASSERT_TRUE(p.a.resetStreams(second, p.now).ok());  // waits for, or joins, the outstanding request
  std::set<std::uint16_t> reset;
  ASSERT_TRUE(p.runUntil(
      [&] {
        reset.clear();
        for (auto& r : p.resetsB)
          if (r.incoming) reset.insert(r.streams.begin(), r.streams.end());
        return reset.size() == 5;
      },
      Duration(10'000'000)));
  EXPECT_EQ(p.messagesB.size(), 3u);
}

}  // namespace
}  // namespace rtcpeer::sctp
