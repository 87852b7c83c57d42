// The driver: deadlines, ordering of simultaneous events, runUntil/runFor, the stuck-endpoint guard, and scale.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "sim/network.hpp"
#include "test_endpoints.hpp"

namespace rtcpeer::sim {
namespace {

using testing::addr;
using testing::Recorder;

const SocketAddress kA = addr("198.51.100.1", 1000);
const SocketAddress kB = addr("203.0.113.1", 2000);

// An endpoint whose deadline the test sets directly, as a test calling into a core would change it.
struct Timer : Recorder {
  explicit Timer(std::string* log = nullptr, char name = '?') : log_(log), name_(name) {}
  void onTimeout(Timestamp now) override {
    fired.push_back(now);
    if (log_ != nullptr) *log_ += name_;
    deadline = kNever;
  }
  void onDatagram(const SocketAddress& l, const SocketAddress& r, ByteView d, Timestamp now) override {
    Recorder::onDatagram(l, r, d, now);
    if (log_ != nullptr) *log_ += 'd';
  }
  Timestamp nextDeadline() const override { return deadline; }
  Timestamp deadline = kNever;
  std::vector<Timestamp> fired;

 private:
  std::string* log_;
  char name_;
};

TEST(SimDriver, DeadlinesAreReReadEveryStep) {
  Network net(1);
  LinkConfig link;
  link.delay = 200ms;
  net.setDefaultLink(link);
  Timer t;
  net.bind(t, kA);
  t.deadline = fromMicros(1'500'000);
  net.send(kB, kA, asBytes("x"));
  ASSERT_TRUE(net.step());
  EXPECT_EQ(net.now(), fromMicros(1'200'000));
  t.deadline = fromMicros(1'300'000);  // moved earlier behind the network's back
  ASSERT_TRUE(net.step());
  ASSERT_EQ(t.fired.size(), 1u);
  EXPECT_EQ(t.fired[0], fromMicros(1'300'000));
  EXPECT_FALSE(net.step());
}

TEST(SimDriver, PastDeadlinesFireAtTheCurrentTime) {
  Network net(1);
  Timer t;
  net.bind(t, kA);
  net.runFor(1s);
  t.deadline = fromMicros(1'500'000);
  EXPECT_EQ(net.nextTime(), fromMicros(2'000'000));
  ASSERT_TRUE(net.step());
  EXPECT_EQ(t.fired.at(0), fromMicros(2'000'000));
  EXPECT_EQ(net.now(), fromMicros(2'000'000));
}

TEST(SimDriver, SimultaneousEventsRunArrivalsFirstThenEndpointsInBindOrder) {
  Network net(1);
  LinkConfig link;
  link.delay = 10ms;
  net.setDefaultLink(link);
  std::string log;
  Timer second(&log, '2'), first(&log, '1');
  net.bind(first, kA);
  net.bind(second, kB);
  first.deadline = second.deadline = fromMicros(1'010'000);
  net.send(kA, kB, asBytes("x"));
  net.runFor(1s);
  EXPECT_EQ(log, "d12");
}

TEST(SimDriver, AnEndpointBoundTwiceFiresOncePerDeadline) {
  Network net(1);
  Timer t;
  net.bind(t, kA);
  net.bind(t, kB);
  t.deadline = fromMicros(1'100'000);
  net.runFor(1s);
  EXPECT_EQ(t.fired.size(), 1u);
  net.unbind(kA);
  t.deadline = fromMicros(2'500'000);
  net.runFor(1s);
  EXPECT_EQ(t.fired.size(), 2u);  // still bound at kB
  net.unbind(kB);
  t.deadline = fromMicros(3'500'000);
  net.runFor(1s);
  EXPECT_EQ(t.fired.size(), 2u);  // no longer polled
}

TEST(SimDriver, RunUntilStopsWhenDoneOrAtTheLimit) {
  Network net(1);
  LinkConfig link;
  link.delay = 30ms;
  net.setDefaultLink(link);
  Recorder b;
  net.bind(b, kB);
  EXPECT_TRUE(net.runUntil([] { return true; }, 1s));
  EXPECT_EQ(net.now(), fromMicros(1'000'000));
  net.send(kA, kB, asBytes("x"));
  EXPECT_FALSE(net.runUntil([&] { return !b.rx.empty(); }, 20ms));
  EXPECT_EQ(net.now(), fromMicros(1'020'000));
  EXPECT_TRUE(net.runUntil([&] { return !b.rx.empty(); }, 20ms));
  EXPECT_EQ(net.now(), fromMicros(1'030'000));
  EXPECT_FALSE(net.runUntil([] { return false; }, 1s));
  EXPECT_EQ(net.now(), fromMicros(2'030'000));
}

// Keeps asking to be woken now without ever making progress.
struct Stuck : Recorder {
  explicit Stuck(Network& n) : net(n) {}
  void onTimeout(Timestamp) override { ++calls; }
  Timestamp nextDeadline() const override { return net.now(); }
  Network& net;
  int calls = 0;
};

TEST(SimDriver, AnEndpointThatNeverProgressesFailsInsteadOfHanging) {
  Network net(1);
  Stuck s(net);
  net.bind(s, kA);
  try {
    net.runFor(1s);
    FAIL() << "expected the guard to trip";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("without progress"), std::string::npos);
  }
  EXPECT_EQ(s.calls, 1000);
}

// Sends a 1200-byte datagram every 96 us (100 Mbit/s of payload) and the receiver acks each one with 50 bytes.
struct Bulk : Endpoint {
  Bulk(Network& n, int count) : net(n), left(count) {}
  void onDatagram(const SocketAddress&, const SocketAddress&, ByteView, Timestamp) override { ++acks; }
  void onTimeout(Timestamp now) override {
    net.send(kA, kB, payload);
    --left;
    next = now + 96us;
  }
  Timestamp nextDeadline() const override { return left > 0 ? next : kNever; }
  Network& net;
  int left;
  int acks = 0;
  Timestamp next = fromMicros(1'000'000);
  Bytes payload = Bytes(1200, 7);
};
struct Acker : Recorder {
  explicit Acker(Network& n) : net(n) {}
  void onDatagram(const SocketAddress& local, const SocketAddress& remote, ByteView, Timestamp now) override {
    if (first == kNever) first = now;
    last = now;
    net.send(local, remote, ack);
  }
  Network& net;
  Timestamp first = kNever, last = kNever;
  Bytes ack = Bytes(50, 1);
};

TEST(SimDriver, HundredThousandDatagramsAtHundredMegabits) {
  Network net(1);
  LinkConfig link;
  link.delay = 25ms;
  link.bandwidthBps = 100'000'000;
  net.setDefaultLink(link);
  Bulk tx(net, 100'000);
  Acker rx(net);
  net.bind(tx, kA);
  net.bind(rx, kB);
  net.runFor(20s);
  EXPECT_EQ(tx.acks, 100'000);
  EXPECT_EQ(net.stats().queueDrops, 0u);
  const double mbps = 99'999.0 * 1200 * 8 / toSeconds(rx.last - rx.first) / 1e6;
  EXPECT_NEAR(mbps, 100.0, 0.5);
}

}  // namespace
}  // namespace rtcpeer::sim
