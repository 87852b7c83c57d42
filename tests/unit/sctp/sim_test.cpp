// The association over the deterministic network simulator: random workloads in both directions under loss,
// reordering, duplication, delay and bandwidth limits, over several seeds.
#include <gtest/gtest.h>

#include "harness.hpp"

namespace rtcpeer::sctp {
namespace {

using testing::SimPeer;
using testing::testOptions;
using testing::Workload;

struct Scenario {
  const char* name;
  double loss;
  Duration delay;
  Duration jitter;
  double duplicate;
  std::uint64_t bandwidthBps;
  bool idata = false;  // RFC 8260 interleaving on both sides
};

SocketAddress addr(const char* ip) { return *SocketAddress::parse(ip, 4000); }

struct SimRun {
  Duration elapsed{0};
  Duration maxStall{0};
  Metrics a, b;
};

SimRun runScenario(const Scenario& s, std::uint64_t seed, int messages, CongestionControl cc) {
  sim::Network net(seed);
  sim::LinkConfig link;
  link.loss = s.loss;
  link.delay = s.delay;
  link.jitter = s.jitter;
  link.duplicate = s.duplicate;
  link.bandwidthBps = s.bandwidthBps;
  net.setDefaultLink(link);
  Options o = testOptions();
  o.congestionControl = cc;
  o.enableIData = s.idata;
  SimPeer a(net, addr("10.0.0.1"), addr("10.0.0.2"), o, seed * 2);
  SimPeer b(net, addr("10.0.0.2"), addr("10.0.0.1"), o, seed * 2 + 1);
  Workload ab(seed, messages, 256 * 1024, 12), ba(seed + 7777, messages / 2, 64 * 1024, 5);
  Timestamp last = net.now();
  SimRun run;
  auto progress = [&](Timestamp now) {
    run.maxStall = std::max(run.maxStall, now - last);
    last = now;
  };
  b.onMessage = [&](const Message& m) {
    ab.onReceived(m);
    progress(net.now());
  };
  a.onMessage = [&](const Message& m) {
    ba.onReceived(m);
    progress(net.now());
  };
  Timestamp start = net.now();
  a.assoc.connect(start);
  b.assoc.connect(start);
  ab.sendAll(a.assoc, start);
  ba.sendAll(b.assoc, start);
  a.flush(start);
  b.flush(start);
  bool done = net.runUntil([&] { return ab.complete() && ba.complete(); }, Duration(600'000'000));
  EXPECT_TRUE(done) << s.name << " seed " << seed << ": " << ab.seen.size() << "/" << ab.msgs.size() << " and "
                    << ba.seen.size() << "/" << ba.msgs.size();
  EXPECT_EQ(a.assoc.state(), State::Established);
  EXPECT_EQ(b.assoc.state(), State::Established);
  // Everything delivered and popped: the receive-window accounting is back to empty (no leak, no underflow).
  EXPECT_EQ(a.assoc.metrics().receiveBuffered, 0u) << s.name;
  EXPECT_EQ(b.assoc.metrics().receiveBuffered, 0u) << s.name;
  run.elapsed = net.now() - start;
  run.a = a.assoc.metrics();
  run.b = b.assoc.metrics();
  // Then a graceful close in the same conditions.
  a.assoc.shutdown(net.now());
  a.flush(net.now());
  EXPECT_TRUE(net.runUntil([&] { return a.assoc.state() == State::Closed && b.assoc.state() == State::Closed; },
                           Duration(120'000'000)))
      << s.name;
  return run;
}

class SctpSim : public ::testing::TestWithParam<std::tuple<Scenario, CongestionControl>> {};

TEST_P(SctpSim, RandomWorkloadsArriveExactlyOnceAndInOrder) {
  const Scenario& s = std::get<0>(GetParam());
  for (std::uint64_t seed : {1, 2, 3}) {
    SimRun r = runScenario(s, seed, 40, std::get<1>(GetParam()));
    // Progress may pause for retransmission timeouts (with backoff) but never for longer than a run of them.
    EXPECT_LT(r.maxStall, Duration(12'000'000)) << s.name << " seed " << seed;
    if (s.loss == 0 && s.duplicate == 0 && s.bandwidthBps == 0) {  // queue overflow is loss too
      EXPECT_EQ(r.a.t3Expirations, 0u) << s.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Conditions, SctpSim,
    ::testing::Combine(::testing::Values(Scenario{"clean", 0, Duration(10'000), Duration(0), 0, 0},
                      Scenario{"loss1", 0.01, Duration(25'000), Duration(0), 0, 0},
                      Scenario{"loss5_reorder_dup", 0.05, Duration(25'000), Duration(10'000), 0.02, 0},
                      Scenario{"loss20", 0.20, Duration(20'000), Duration(5'000), 0.01, 0},
                      Scenario{"delay150_jitter", 0.01, Duration(150'000), Duration(30'000), 0, 0},
                      Scenario{"bandwidth5M", 0.0, Duration(20'000), Duration(0), 0, 5'000'000},
                      Scenario{"bandwidth2M_loss5", 0.05, Duration(5'000), Duration(0), 0, 2'000'000},
                      Scenario{"idata_loss5_reorder_dup", 0.05, Duration(25'000), Duration(10'000), 0.02, 0, true},
                      Scenario{"idata_bandwidth2M_loss5", 0.05, Duration(5'000), Duration(0), 0, 2'000'000, true}),
                       ::testing::Values(CongestionControl::Reno, CongestionControl::Bbr)),
    [](const auto& i) {
      return std::string(std::get<0>(i.param).name) +
             (std::get<1>(i.param) == CongestionControl::Reno ? "_reno" : "_bbr");
    });

TEST(SctpSimHandshake, SimultaneousOpenUnderHeavyLossAndDelay) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    sim::Network net(seed);
    sim::LinkConfig link;
    link.loss = 0.3;
    link.delay = Duration(300'000);
    net.setDefaultLink(link);
    Options o = testOptions();
    o.maxInitRetransmits = 20;
    SimPeer a(net, addr("10.0.0.1"), addr("10.0.0.2"), o, seed);
    SimPeer b(net, addr("10.0.0.2"), addr("10.0.0.1"), o, seed + 100);
    a.assoc.connect(net.now());
    b.assoc.connect(net.now());
    a.flush(net.now());
    b.flush(net.now());
    ASSERT_TRUE(net.runUntil(
        [&] { return a.assoc.state() == State::Established && b.assoc.state() == State::Established; },
        Duration(120'000'000)))
        << "seed " << seed;
    EXPECT_EQ(a.events.size(), 1u);
    EXPECT_EQ(b.events.size(), 1u);
  }
}

}  // namespace
}  // namespace rtcpeer::sctp
