// Max.Burst (RFC 9260 6.1 D, Options::maxBurst): a sending opportunity adds at most maxBurst MTUs of new DATA to
// what was in flight when it began, however large cwnd is; and the limit costs no throughput on a real path.
#include <gtest/gtest.h>

#include "harness.hpp"

namespace rtcpeer::sctp {
namespace {

using testing::DirectPair;
using testing::payloadFor;
using testing::SimPeer;
using testing::testOptions;

bool hasData(ByteView packet) {
  bool data = false;
  testing::forEachChunk(packet, [&](const RawChunk& c) { data |= c.type == ChunkType::kData; });
  return data;
}

Options burstOptions(CongestionControl cc, std::size_t maxBurst) {
  Options o = testOptions();
  o.congestionControl = cc;
  o.initialCwndMtus = 64;  // a window far larger than the burst limit from the start
  o.maxBurst = maxBurst;
  return o;
}

void queueBulk(Association& a, int messages, Timestamp now) {
  for (int i = 0; i < messages; ++i)
    ASSERT_TRUE(a.send(0, static_cast<std::uint32_t>(i), payloadFor(i, 256 * 1024), {}, now).ok());
}

// Sends a's packets to b; returns how many carried DATA.
int drainA(DirectPair& p) {
  int data = 0;
  while (auto packet = p.a.pollTransmit(p.now)) {
    data += hasData(*packet);
    Bytes copy(packet->begin(), packet->end());
    p.b.handleInput(copy, p.now);
  }
  return data;
}

bool drainB(DirectPair& p) {
  bool any = false;
  while (auto packet = p.b.pollTransmit(p.now)) {
    any = true;
    Bytes copy(packet->begin(), packet->end());
    p.a.handleInput(copy, p.now);
  }
  return any;
}

int firstBurst(CongestionControl cc, std::size_t maxBurst) {
  DirectPair p(burstOptions(cc, maxBurst), burstOptions(cc, maxBurst));
  EXPECT_TRUE(p.connect());
  queueBulk(p.a, 4, p.now);
  return drainA(p);
}

TEST(MaxBurst, OneSendEmitsMaxBurstPacketsWhateverTheWindow) {
  for (auto cc : {CongestionControl::Reno, CongestionControl::Bbr}) {
    EXPECT_EQ(firstBurst(cc, 4), 4);
    EXPECT_EQ(firstBurst(cc, 1), 1);
    EXPECT_GE(firstBurst(cc, 0), 64);  // 0 = unlimited: the whole initial window at once
  }
}

// Bulk transfer over a pair that acknowledges each burst with one SACK (as PeerConnection does with a batch of
// records): every opportunity may refill what its SACKs freed plus maxBurst packets, never more, and the
// transfer still completes (no opportunity is ever left without a next one).
TEST(MaxBurst, EachOpportunityAddsAtMostMaxBurstToTheFlight) {
  for (auto cc : {CongestionControl::Reno, CongestionControl::Bbr}) {
    const Options o = burstOptions(cc, 4);
    DirectPair p(o, o);
    ASSERT_TRUE(p.connect());
    queueBulk(p.a, 8, p.now);
    EXPECT_EQ(drainA(p), 4);
    std::size_t received = 0, maxFlight = 0, bursts = 0;
    while (received < 8) {
      ASSERT_LT(++bursts, 100'000u);
      const std::size_t before = p.a.metrics().bytesInFlight;
      if (!drainB(p)) {  // nothing due yet: let the delayed-ack (or T3) timer fire
        Timestamp next = earliest(p.a.nextDeadline(), p.b.nextDeadline());
        ASSERT_NE(next, kNever) << "stalled with " << received << " messages delivered";
        p.now = std::max(p.now, next);
        p.a.handleTimeout(p.now);
        p.b.handleTimeout(p.now);
        drainB(p);
      }
      drainA(p);
      const std::size_t after = p.a.metrics().bytesInFlight;
      EXPECT_LE(after, before + o.maxBurst * o.mtu) << "opportunity " << bursts;
      maxFlight = std::max(maxFlight, after);
      while (auto m = p.b.pollMessage()) ++received;
    }
    // The window was still used: the flight grew far beyond one burst.
    EXPECT_GT(maxFlight, 20 * o.mtu);
    EXPECT_EQ(p.a.metrics().t3Expirations, 0u);
  }
}

struct BulkRun {
  Duration elapsed{0};
  std::uint64_t queueDrops = 0, restartDrops = 0;
  std::uint64_t t3 = 0;
};

// 4 MiB over 10 Mbit/s with 20 ms each way, a shallow drop-tail queue (24 KiB, about half the BDP) and random
// loss; then, after the window has grown, an idle second and another 1 MiB: a restart after idle meets a
// full-size cwnd, which without Max.Burst goes out at once and overflows the queue.
BulkRun bulkOverSim(CongestionControl cc, std::size_t maxBurst, std::uint64_t seed) {
  sim::Network net(seed);
  sim::LinkConfig link;
  link.delay = Duration(20'000);
  link.bandwidthBps = 10'000'000;
  link.queueBytes = 24 * 1024;
  link.loss = 0.005;
  net.setDefaultLink(link);
  Options o = testOptions();
  o.congestionControl = cc;
  o.maxBurst = maxBurst;
  const SocketAddress ia = *SocketAddress::parse("10.0.0.1", 4000), ib = *SocketAddress::parse("10.0.0.2", 4000);
  SimPeer a(net, ia, ib, o, 1), b(net, ib, ia, o, 2);
  int received = 0;
  b.onMessage = [&](const Message&) { ++received; };
  const Timestamp start = net.now();
  a.assoc.connect(start);
  b.assoc.connect(start);
  queueBulk(a.assoc, 16, start);
  a.flush(start);
  b.flush(start);
  EXPECT_TRUE(net.runUntil([&] { return received == 16; }, Duration(120'000'000))) << received;
  net.runUntil([] { return false; }, Duration(1'000'000));
  const std::uint64_t drops = net.stats().queueDrops;
  queueBulk(a.assoc, 4, net.now());
  a.flush(net.now());
  EXPECT_TRUE(net.runUntil([&] { return received == 20; }, Duration(120'000'000))) << received;
  return {net.now() - start, net.stats().queueDrops, net.stats().queueDrops - drops, a.assoc.metrics().t3Expirations};
}

TEST(MaxBurst, BulkTransferOverAShallowLossyBottleneckIsNotSlowerAndDropsLess) {
  std::uint64_t restartDrops[2] = {0, 0};
  for (auto cc : {CongestionControl::Reno, CongestionControl::Bbr}) {
    double elapsed[2] = {0, 0};
    std::uint64_t drops[2] = {0, 0};
    for (std::uint64_t seed : {1, 2, 3}) {
      for (int unlimited : {0, 1}) {
        const BulkRun r = bulkOverSim(cc, unlimited ? 0 : 4, seed);
        elapsed[unlimited] += toSeconds(r.elapsed);
        drops[unlimited] += r.queueDrops;
        restartDrops[unlimited] += r.restartDrops;
      }
    }
    const char* name = cc == CongestionControl::Reno ? "reno" : "bbr";
    std::printf("%s, 3 seeds: maxBurst 4: %.2f s, %d queue drops; unlimited: %.2f s, %d queue drops\n", name,
                elapsed[0], int(drops[0]), elapsed[1], int(drops[1]));
    EXPECT_LE(elapsed[0], elapsed[1] * 1.03) << name;
    EXPECT_LE(drops[0], drops[1]) << name;
  }
  std::printf("queue drops at the restart after idle: maxBurst 4: %d; unlimited: %d\n", int(restartDrops[0]),
              int(restartDrops[1]));
  EXPECT_LT(restartDrops[0] * 4, restartDrops[1]);
}

}  // namespace
}  // namespace rtcpeer::sctp
