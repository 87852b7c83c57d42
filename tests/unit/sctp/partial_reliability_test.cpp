// Partial reliability (RFC 3758 FORWARD-TSN, RFC 8260 I-FORWARD-TSN): messages with a retransmission or lifetime
// limit may be dropped, but what arrives is exact, in order on ordered streams, never duplicated, and reliable
// messages sharing the association all arrive.
#include <gtest/gtest.h>

#include "harness.hpp"
#include "sctp/packet/chunks.hpp"

namespace rtcpeer::sctp {
namespace {

using testing::DirectPair;
using testing::payloadFor;
using testing::testOptions;

struct Case {
  bool idata;
  bool unordered;
  bool lifetime;  // else maxRetransmits = 0
};

void runCase(const Case& k, std::uint64_t seed) {
  Options o = testOptions();
  o.enableIData = k.idata;
  // The pair has no delay: only timers move time, so all 300 messages go out at one instant unless a lost SACK
  // stalls the exchange until T3. With Max.Burst such a stall comes after a few packets instead of a whole
  // window and outlasts the 50 ms lifetimes; the burst limit has its own tests (burst_test.cpp).
  o.maxBurst = 0;
  DirectPair p(o, o, seed);
  ASSERT_TRUE(p.connect());
  SeededRandom loss(seed);
  bool sawForwardTsn = false;
  p.drop = [&](bool aToB, ByteView pkt) {
    ChunkIterator it(pkt);
    RawChunk c;
    while (it.next(c)) sawForwardTsn |= c.type == ChunkType::kForwardTsn || c.type == ChunkType::kIForwardTsn;
    return aToB ? loss.unit() < 0.15 : loss.unit() < 0.05;
  };
  // Stream 1: unreliable (possibly multi-fragment) messages; stream 2: reliable ordered.
  const int n = 150;
  std::vector<std::size_t> sizes;
  for (int i = 0; i < n; ++i) {
    std::size_t size = 1 + loss.below(i % 10 == 0 ? 6000 : 800);
    sizes.push_back(size);
    SendOptions so{k.unordered, {}, {}};
    if (k.lifetime) so.lifetime = Duration(50'000);
    else so.maxRetransmits = 0;
    ASSERT_TRUE(p.a.send(1, static_cast<std::uint32_t>(i), payloadFor(i, size), so, p.now).ok());
    ASSERT_TRUE(p.a.send(2, static_cast<std::uint32_t>(n + i), payloadFor(n + i, 300), {}, p.now).ok());
  }
  std::set<std::uint32_t> seen;
  std::int64_t lastUnreliable = -1, lastReliable = -1;
  int reliable = 0, unreliable = 0;
  p.onMessageB = [&](const Message& m) {
    EXPECT_TRUE(seen.insert(m.ppid).second) << "duplicate " << m.ppid;
    if (m.ppid == 9999) return;
    if (m.stream == 1) {
      ASSERT_LT(m.ppid, static_cast<std::uint32_t>(n));
      ++unreliable;
      EXPECT_TRUE(m.payload == payloadFor(m.ppid, sizes[m.ppid])) << m.ppid;
      if (!k.unordered) {
        EXPECT_GT(static_cast<std::int64_t>(m.ppid), lastUnreliable);
        lastUnreliable = m.ppid;
      }
    } else {
      EXPECT_EQ(static_cast<std::int64_t>(m.ppid), lastReliable < 0 ? n : lastReliable + 1);
      lastReliable = m.ppid;
      EXPECT_TRUE(m.payload == payloadFor(m.ppid, 300));
      ++reliable;
    }
  };
  ASSERT_TRUE(p.runUntil([&] { return reliable == n && p.a.metrics().bytesInFlight == 0 &&
                                      p.a.totalBufferedAmount() == 0; },
                         Duration(120'000'000)))
      << "reliable " << reliable;
  p.drop = nullptr;
  // After the losses stop, the unreliable stream still works.
  ASSERT_TRUE(p.a.send(1, 9999, asBytes("tail"), SendOptions{k.unordered, 0, {}}, p.now).ok());
  ASSERT_TRUE(p.runUntil([&] { return seen.count(9999) == 1; }, Duration(10'000'000)));
  EXPECT_TRUE(sawForwardTsn);
  EXPECT_LT(unreliable, n);  // some were really abandoned
  EXPECT_GT(unreliable, n / 2);
  EXPECT_EQ(p.a.state(), State::Established);
  EXPECT_EQ(p.b.metrics().receiveBuffered, 0u);  // abandoned fragments left nothing behind in the window
}

TEST(PartialReliability, OrderedMaxRetransmitsZero) {
  for (std::uint64_t seed : {1, 2, 3}) runCase({false, false, false}, seed);
}
TEST(PartialReliability, UnorderedMaxRetransmitsZero) {
  for (std::uint64_t seed : {1, 2, 3}) runCase({false, true, false}, seed);
}
TEST(PartialReliability, OrderedLifetime) {
  for (std::uint64_t seed : {1, 2, 3}) runCase({false, false, true}, seed);
}
TEST(PartialReliability, IDataOrderedAndUnordered) {
  for (std::uint64_t seed : {1, 2}) {
    runCase({true, false, false}, seed);
    runCase({true, true, true}, seed);
  }
}

// The application queues between polls and we transmit only in them: a message whose lifetime (1 ms, as Godot's
// WebRTCMultiplayer sets) ran out before the next poll is still sent once. Once a sending opportunity has passed
// it by (the peer's window was closed), an expired message is dropped without ever being sent.
TEST(PartialReliability, LifetimeCountsFromTheFirstSendingOpportunity) {
  for (bool idata : {false, true}) {
    Options o = testOptions();
    o.enableIData = idata;
    DirectPair p(o, o);
    ASSERT_TRUE(p.connect());
    const Duration lifetime(1'000), frame(16'000);
    ASSERT_TRUE(p.a.send(1, 1, asBytes("late poll"), SendOptions{false, {}, lifetime}, p.now).ok());
    p.now = p.now + frame;  // the next frame's poll
    p.flush();
    ASSERT_EQ(p.messagesB.size(), 1u) << "idata " << idata;
    EXPECT_EQ(p.messagesB[0].ppid, 1u);

    // Offered once but held back (nothing may leave: every packet A sends is lost, so the first DATA takes the
    // window and the rest waits), then expired: dropped, never sent.
    p.drop = [](bool aToB, ByteView) { return aToB; };
    ASSERT_TRUE(p.a.send(2, 2, Bytes(1000, 7), SendOptions{}, p.now).ok());  // reliable, fills the flight
    for (std::uint32_t i = 0; i < 200; ++i)
      ASSERT_TRUE(p.a.send(1, 100 + i, Bytes(1000, 1), SendOptions{false, {}, lifetime}, p.now).ok());
    p.flush();
    p.drop = nullptr;
    p.now = p.now + frame;
    ASSERT_TRUE(p.runUntil([&] { return p.a.totalBufferedAmount() == 0 && p.a.metrics().bytesInFlight == 0; },
                           Duration(10'000'000)));
    std::size_t late = 0, reliable = 0;
    for (const Message& m : p.messagesB) {
      late += m.ppid >= 100;
      reliable += m.ppid == 2;
    }
    EXPECT_EQ(late, 0u) << "messages held back past their lifetime were still sent";
    EXPECT_EQ(reliable, 1u);  // the reliable one was retransmitted
    EXPECT_EQ(p.a.state(), State::Established);
  }
}

}  // namespace
}  // namespace rtcpeer::sctp
