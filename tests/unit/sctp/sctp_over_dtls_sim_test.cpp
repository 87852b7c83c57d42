// The association over the DTLS layer in the simulator, end to end (RFC 8261): two DTLS endpoints handshake across
// a lossy, delayed, reordering link on virtual time (OpenSSL's timer follows it, virtual_time.hpp), then each SCTP
// packet travels as one DTLS record. Random workloads in both directions arrive exact, once and in order on
// ordered streams; then a graceful SCTP shutdown and a DTLS close.
#include <gtest/gtest.h>

#include "harness.hpp"
#include "unit/dtls/sim_dtls.hpp"

namespace rtcpeer::sctp {
namespace {

using testing::testOptions;
using testing::Workload;

/// A DTLS endpoint with an association on top: DTLS application data in, SCTP packets out as DTLS records.
class DtlsSctpPeer final : public sim::Endpoint {
 public:
  DtlsSctpPeer(sim::Network& net, SocketAddress local, SocketAddress remote, dtls::Config cfg, Options opts,
               std::uint64_t seed)
      : dtls(std::move(cfg)), rng_(seed), assoc(opts, rng_), net_(net), local_(local), remote_(remote) {
    net_.bind(*this, local_);
  }
  ~DtlsSctpPeer() override { net_.unbind(local_); }

  void onDatagram(const SocketAddress&, const SocketAddress&, ByteView data, Timestamp now) override {
    dtls.handleInput(data, now);
    flush(now);
  }
  void onTimeout(Timestamp now) override {
    if (dtls.nextDeadline() <= now) dtls.handleTimeout(now);
    if (assoc.nextDeadline() <= now) assoc.handleTimeout(now);
    flush(now);
  }
  Timestamp nextDeadline() const override { return earliest(dtls.nextDeadline(), assoc.nextDeadline()); }

  void flush(Timestamp now) {
    while (auto e = dtls.pollEvent()) {
      dtlsEvents.push_back(*e);
      if (dtls.state() == dtls::State::Connected && !connectCalled_) {
        connectCalled_ = true;  // both sides connect: SCTP simultaneous open, as WebRTC peers do
        assoc.connect(now);
      }
    }
    while (auto d = dtls.pollApplicationData()) assoc.handleInput(*d, now);
    if (dtls.state() == dtls::State::Connected)
      while (auto p = assoc.pollTransmit(now)) {
        ASSERT_LE(p->size(), dtls.maxApplicationPayload()) << "an SCTP packet must fit one DTLS record datagram";
        ASSERT_TRUE(dtls.send(*p, now).ok());
      }
    while (auto d = dtls.pollTransmit()) net_.send(local_, remote_, *d);
    while (auto e = assoc.pollEvent()) events.push_back(*e);
    while (auto m = assoc.pollMessage()) {
      if (onMessage) onMessage(*m);
      assoc.recycle(std::move(m->payload));
    }
  }

  dtls::Endpoint dtls;
  SeededRandom rng_;
  Association assoc;
  std::vector<dtls::Event> dtlsEvents;
  std::vector<Event> events;
  std::function<void(const Message&)> onMessage;

 private:
  bool connectCalled_ = false;
  sim::Network& net_;
  SocketAddress local_, remote_;
};

struct Conditions {
  const char* name;
  double loss;
  Duration delay, jitter;
  double reorder;
};

void runOverDtls(const Conditions& c, std::uint64_t seed, bool idata) {
  SCOPED_TRACE(std::string(c.name) + " seed " + std::to_string(seed) + (idata ? " I-DATA" : " DATA"));
  dtls::test::PairSetup setup(seed);
  sim::LinkConfig link;
  link.loss = c.loss;
  link.delay = c.delay;
  link.jitter = c.jitter;
  link.reorder = c.reorder;
  link.reorderDelay = Duration(15'000);
  setup.net.setDefaultLink(link);
  Options o = testOptions();
  o.enableIData = idata;
  DtlsSctpPeer a(setup.net, setup.addrA, setup.addrB, setup.a, o, seed * 2);
  DtlsSctpPeer b(setup.net, setup.addrB, setup.addrA, setup.b, o, seed * 2 + 1);
  // Messages are queued before anything is connected: they wait for DTLS and the SCTP handshake.
  Workload ab(seed, 24, 256 * 1024, 6), ba(seed + 99, 12, 64 * 1024, 3);
  b.onMessage = [&](const Message& m) { ab.onReceived(m); };
  a.onMessage = [&](const Message& m) { ba.onReceived(m); };
  Timestamp start = setup.net.now();
  ab.sendAll(a.assoc, start);
  ba.sendAll(b.assoc, start);
  a.dtls.start(start);
  b.dtls.start(start);
  a.flush(start);
  b.flush(start);
  ASSERT_TRUE(setup.net.runUntil([&] { return ab.complete() && ba.complete(); }, Duration(300'000'000)))
      << ab.seen.size() << "/" << ab.msgs.size() << " and " << ba.seen.size() << "/" << ba.msgs.size()
      << ", DTLS " << static_cast<int>(a.dtls.state()) << "/" << static_cast<int>(b.dtls.state()) << ", SCTP "
      << toString(a.assoc.state()) << "/" << toString(b.assoc.state());
  EXPECT_EQ(ab.receivedBytes, ab.totalBytes);
  EXPECT_EQ(ba.receivedBytes, ba.totalBytes);
  ASSERT_EQ(a.events.size(), 1u);
  EXPECT_EQ(a.events[0].type, Event::Type::Connected);
  if (c.loss > 0) {
    EXPECT_GT(a.assoc.metrics().retransmissions + b.assoc.metrics().retransmissions, 0u);
  }
  // Graceful SCTP shutdown over the same lossy link, then DTLS close_notify.
  a.assoc.shutdown(setup.net.now());
  a.flush(setup.net.now());
  ASSERT_TRUE(setup.net.runUntil(
      [&] { return a.assoc.state() == State::Closed && b.assoc.state() == State::Closed; }, Duration(60'000'000)));
  EXPECT_TRUE(testing::DirectPair::has(a.events, Event::Type::Closed));
  EXPECT_TRUE(testing::DirectPair::has(b.events, Event::Type::Closed));
  a.dtls.close(setup.net.now());
  a.flush(setup.net.now());
  setup.net.runFor(Duration(1'000'000));
  EXPECT_EQ(a.dtls.state(), dtls::State::Closed);
}

TEST(SctpOverDtlsSim, WorkloadsArriveExactlyOnceAndInOrderThenShutdown) {
  const Conditions conditions[] = {
      {"clean", 0, Duration(20'000), Duration(0), 0},
      {"loss1_reorder", 0.01, Duration(25'000), Duration(5'000), 0.05},
      {"loss5_reorder_jitter", 0.05, Duration(40'000), Duration(20'000), 0.05},
  };
  for (const auto& c : conditions)
    for (std::uint64_t seed : {1, 2, 3}) runOverDtls(c, seed, seed == 3);
}

}  // namespace
}  // namespace rtcpeer::sctp
