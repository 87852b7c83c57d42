// Link behaviour: delay, jitter, loss, burst loss, reordering, duplication, bandwidth, MTU; and determinism.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "sim/network.hpp"
#include "test_endpoints.hpp"

namespace rtcpeer::sim {
namespace {

using testing::addr;
using testing::indexOf;
using testing::Pacer;
using testing::Recorder;

const SocketAddress kA = addr("198.51.100.1", 1000);
const SocketAddress kB = addr("203.0.113.1", 2000);

// A one-way stream A -> B over `link`; returns what B received.
struct Stream {
  Stream(std::uint64_t seed, const LinkConfig& link, int count, std::size_t size, Duration interval)
      : net(seed), pacer(net, kA, kB, count, size, interval) {
    net.setLink(kA, kB, link);
    net.bind(pacer, kA);
    net.bind(rx, kB);
    net.runFor(std::chrono::seconds(600));
  }
  Network net;
  Pacer pacer;
  Recorder rx;
};

TEST(SimLink, ClockStartsAtOneSecondAndIdleNetworkHasNothingToDo) {
  Network net(1);
  EXPECT_EQ(net.now(), fromMicros(1'000'000));
  EXPECT_FALSE(net.step());
  EXPECT_EQ(net.nextTime(), kNever);
  net.runFor(5ms);
  EXPECT_EQ(net.now(), fromMicros(1'005'000));
}

TEST(SimLink, DelayIsExactAndEchoComesBack) {
  Network net(1);
  LinkConfig link;
  link.delay = 10ms;
  net.setDefaultLink(link);
  Recorder a;
  testing::Echo b(net);
  net.bind(a, kA);
  net.bind(b, kB);
  net.send(kA, kB, asBytes("ping"));
  EXPECT_EQ(net.pending(), 1u);
  EXPECT_EQ(net.nextTime(), fromMicros(1'010'000));
  ASSERT_TRUE(net.runUntil([&] { return !a.rx.empty(); }, 1s));
  ASSERT_EQ(b.rx.size(), 1u);
  EXPECT_EQ(b.rx[0].at, fromMicros(1'010'000));
  EXPECT_EQ(b.rx[0].local, kB);
  EXPECT_EQ(b.rx[0].remote, kA);
  EXPECT_EQ(a.rx[0].at, fromMicros(1'020'000));
  EXPECT_EQ(asString(a.rx[0].data), "ping");
  EXPECT_EQ(net.stats().sent, 2u);
  EXPECT_EQ(net.stats().delivered, 2u);
  EXPECT_EQ(net.stats().deliveredBytes, 8u);
}

TEST(SimLink, SimultaneousDatagramsArriveInSendOrder) {
  Network net(1);
  Recorder b;
  net.bind(b, kB);
  for (std::uint32_t i = 0; i < 1000; ++i) {
    Bytes d(4);
    storeBe32(d.data(), i);
    net.send(kA, kB, d);
  }
  net.runFor(1s);
  ASSERT_EQ(b.rx.size(), 1000u);
  for (std::uint32_t i = 0; i < 1000; ++i) EXPECT_EQ(indexOf(b.rx[i]), i);
}

TEST(SimLink, JitterStaysWithinBoundsAndReorders) {
  LinkConfig link;
  link.delay = 20ms;
  link.jitter = 5ms;
  Stream s(7, link, 2000, 100, 1ms);
  ASSERT_EQ(s.rx.rx.size(), 2000u);
  Duration lo = Duration::max(), hi = Duration::min();
  int inversions = 0;
  for (std::size_t i = 0; i < s.rx.rx.size(); ++i) {
    const auto& r = s.rx.rx[i];
    const Duration d = r.at - s.pacer.sendTimes[indexOf(r)];
    lo = std::min(lo, d);
    hi = std::max(hi, d);
    if (i > 0 && indexOf(r) < indexOf(s.rx.rx[i - 1])) ++inversions;
  }
  EXPECT_GE(lo, 20ms);
  EXPECT_LE(hi, 25ms);
  EXPECT_LT(lo, 20ms + 200us);  // the whole range is used
  EXPECT_GT(hi, 25ms - 200us);
  EXPECT_GT(inversions, 100);  // 5 ms of jitter over 1 ms spacing reorders often
}

TEST(SimLink, IndependentLossRateIsCloseToConfigured) {
  LinkConfig link;
  link.loss = 0.1;
  Stream s(3, link, 20000, 20, 100us);
  const double rate = static_cast<double>(s.net.stats().lost) / 20000;
  EXPECT_NEAR(rate, 0.1, 0.01);  // ~5 sigma
  EXPECT_EQ(s.rx.rx.size() + s.net.stats().lost, 20000u);
}

TEST(SimLink, GilbertElliottLossComesInBursts) {
  LinkConfig link;
  link.burstEnter = 0.01;
  link.burstExit = 0.25;
  const int n = 50000;
  Stream s(5, link, n, 20, 100us);
  std::vector<bool> got(n, false);
  for (const auto& r : s.rx.rx) got[indexOf(r)] = true;
  int lost = 0, bursts = 0;
  for (int i = 0; i < n; ++i) {
    if (!got[i]) {
      ++lost;
      if (i == 0 || got[i - 1]) ++bursts;
    }
  }
  EXPECT_EQ(static_cast<std::uint64_t>(lost), s.net.stats().lost);
  // Stationary loss enter / (enter + exit) = 3.8 %; mean burst 1 / exit = 4 packets.
  EXPECT_NEAR(static_cast<double>(lost) / n, 0.01 / 0.26, 0.01);
  EXPECT_NEAR(static_cast<double>(lost) / bursts, 4.0, 0.6);
}

TEST(SimLink, ReorderingHoldsBackTheConfiguredShare) {
  LinkConfig link;
  link.delay = 10ms;
  link.reorder = 0.1;
  link.reorderDelay = 3500us;
  Stream s(11, link, 10000, 20, 1ms);
  ASSERT_EQ(s.rx.rx.size(), 10000u);
  int late = 0;
  for (const auto& r : s.rx.rx) {
    const Duration d = r.at - s.pacer.sendTimes[indexOf(r)];
    EXPECT_TRUE(d == 10ms || d == 13500us);
    late += d == 13500us;
  }
  EXPECT_NEAR(late / 10000.0, 0.1, 0.015);
}

TEST(SimLink, DuplicationDeliversExtraCopies) {
  LinkConfig link;
  link.duplicate = 0.2;
  Stream s(13, link, 10000, 20, 100us);
  EXPECT_EQ(s.rx.rx.size(), 10000u + s.net.stats().duplicated);
  EXPECT_NEAR(static_cast<double>(s.net.stats().duplicated) / 10000, 0.2, 0.02);
  std::set<std::uint32_t> distinct;
  for (const auto& r : s.rx.rx) distinct.insert(indexOf(r));
  EXPECT_EQ(distinct.size(), 10000u);
}

TEST(SimLink, MtuDropsLargerDatagrams) {
  Network net(1);
  LinkConfig link;
  link.mtu = 1200;
  net.setDefaultLink(link);
  Recorder b;
  net.bind(b, kB);
  net.send(kA, kB, Bytes(1200, 1));
  net.send(kA, kB, Bytes(1201, 1));
  net.runFor(1s);
  ASSERT_EQ(b.rx.size(), 1u);
  EXPECT_EQ(b.rx[0].data.size(), 1200u);
  EXPECT_EQ(net.stats().mtuDrops, 1u);
}

TEST(SimLink, SerializationDelayAndQueueOccupancy) {
  Network net(1);
  LinkConfig link;
  link.bandwidthBps = 1'000'000;
  link.delay = 5ms;
  net.setLink(kA, kB, link);
  Recorder b;
  net.bind(b, kB);
  for (int i = 0; i < 10; ++i) net.send(kA, kB, Bytes(1000, 1));  // 8 ms each
  EXPECT_EQ(net.queuedBytes(kA, kB), 10000u);
  net.runFor(20ms);
  EXPECT_EQ(net.queuedBytes(kA, kB), 8000u);
  net.runFor(1s);
  ASSERT_EQ(b.rx.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(b.rx[i].at, fromMicros(1'000'000 + 8000 * (i + 1) + 5000));
  EXPECT_EQ(net.queuedBytes(kA, kB), 0u);
}

TEST(SimLink, BandwidthLimitGivesThroughputAndDropsWhenOverfull) {
  LinkConfig link;
  link.bandwidthBps = 1'000'000;
  link.queueBytes = 20'000;
  link.delay = 10ms;
  // Offer 2 Mbit/s (1000 bytes every 4 ms) for 4 s.
  Stream s(1, link, 1000, 1000, 4ms);
  const auto& rx = s.rx.rx;
  ASSERT_GT(rx.size(), 400u);
  const double seconds = toSeconds(rx.back().at - rx.front().at);
  const double bps = static_cast<double>((rx.size() - 1) * 1000 * 8) / seconds;
  EXPECT_NEAR(bps, 1e6, 1e4);
  EXPECT_GT(s.net.stats().queueDrops, 400u);
  EXPECT_EQ(rx.size() + s.net.stats().queueDrops, 1000u);
  // A full 20 kB queue at 1 Mbit/s adds at most 160 ms (+ the datagram's own 8 ms) to the 10 ms delay.
  Duration worst{0};
  for (const auto& r : rx) worst = std::max(worst, r.at - s.pacer.sendTimes[indexOf(r)]);
  EXPECT_LE(worst, 10ms + 168ms);
  EXPECT_GT(worst, 10ms + 150ms);
}

TEST(SimLink, SpecificLinkOverridesDefaultPerDirection) {
  Network net(1);
  LinkConfig slow;
  slow.delay = 50ms;
  LinkConfig fast;
  fast.delay = 1ms;
  net.setDefaultLink(fast);
  net.setLink(kA, kB, slow);
  Recorder a, b;
  net.bind(a, kA);
  net.bind(b, kB);
  net.send(kA, kB, asBytes("x"));
  net.send(kB, kA, asBytes("y"));
  net.runFor(1s);
  EXPECT_EQ(b.rx.at(0).at, fromMicros(1'050'000));
  EXPECT_EQ(a.rx.at(0).at, fromMicros(1'001'000));
}

// A ping-pong exchange with timers, on a lossy, jittery, duplicating, reordering, bandwidth-limited network, whose
// endpoints also draw from net.random() to decide payload sizes.
struct Chatter : Endpoint {
  Chatter(Network& n, SocketAddress self, SocketAddress peer) : net(n), me(self), other(peer) {}
  void onDatagram(const SocketAddress&, const SocketAddress& from, ByteView data, Timestamp) override {
    if (data.size() > 1 && data[0] == 1) net.send(me, from, data.subspan(1));
  }
  void onTimeout(Timestamp now) override {
    Bytes b(2 + net.random().below(1400), static_cast<std::uint8_t>(2 + sent % 200));  // never 1: echoes end
    b[0] = 1;
    net.send(me, other, b);
    ++sent;
    next = now + Duration(net.random().between(100, 3000));
  }
  Timestamp nextDeadline() const override { return sent < 3000 ? next : kNever; }
  Network& net;
  SocketAddress me, other;
  Timestamp next = fromMicros(1'000'000);
  int sent = 0;
};

std::pair<std::uint64_t, Network::Stats> chatter(std::uint64_t seed) {
  Network net(seed);
  LinkConfig link;
  link.delay = 15ms;
  link.jitter = 4ms;
  link.loss = 0.05;
  link.burstEnter = 0.01;
  link.burstExit = 0.3;
  link.reorder = 0.05;
  link.reorderDelay = 2ms;
  link.duplicate = 0.03;
  link.bandwidthBps = 2'000'000;
  link.queueBytes = 30'000;
  net.setDefaultLink(link);
  Chatter a(net, kA, kB), b(net, kB, kA);
  net.bind(a, kA);
  net.bind(b, kB);
  net.runFor(60s);
  // Every datagram sent (plus every duplicate made) is accounted for exactly once.
  const Network::Stats& st = net.stats();
  EXPECT_EQ(net.pending(), 0u);
  EXPECT_EQ(st.sent + st.duplicated,
            st.delivered + st.lost + st.queueDrops + st.mtuDrops + st.natDrops + st.unroutable);
  return {net.traceHash(), st};
}

bool operator==(const Network::Stats& x, const Network::Stats& y) {
  return x.sent == y.sent && x.delivered == y.delivered && x.lost == y.lost && x.queueDrops == y.queueDrops &&
         x.mtuDrops == y.mtuDrops && x.natDrops == y.natDrops && x.duplicated == y.duplicated &&
         x.unroutable == y.unroutable && x.deliveredBytes == y.deliveredBytes;
}

TEST(SimDeterminism, SameSeedSameRunDifferentSeedDifferentRun) {
  const auto [h1, s1] = chatter(42);
  const auto [h2, s2] = chatter(42);
  const auto [h3, s3] = chatter(43);
  EXPECT_EQ(h1, h2);
  EXPECT_TRUE(s1 == s2);
  EXPECT_NE(h1, h3);
  EXPECT_FALSE(s1 == s3);
  // The scenario exercised every impairment.
  EXPECT_GT(s1.lost, 0u);
  EXPECT_GT(s1.duplicated, 0u);
  EXPECT_GT(s1.queueDrops, 0u);
  EXPECT_GT(s1.delivered, 3000u);
}

}  // namespace
}  // namespace rtcpeer::sim
