// Flood (issue 17 item 8): one side sends as fast as it can for 10 virtual seconds while the other never reads;
// then the reader drains everything. The reader keeps what it received in an inbox and counts it against the
// receive window exactly as the PeerConnection does (Association::holdUnread, Session::readCost), so a reader
// that stops closes the window. Checked: the receiver's memory (inbox plus reassembly) stays under receiveWindow +
// maxMessageSize + one message, the sender's queue under maxSendBuffer; the sender sees back-pressure (send()
// refused) and stalls; after reading resumes every message arrives in order and byte-exact, and the association
// never aborts. Virtual time: the 10 s cost well under a second. The PeerConnection-level version of the same
// cycle over real sockets, driven by events, is tests/unit/peer/backpressure_test.cpp.
#include <gtest/gtest.h>

#include <cstdio>
#include <deque>

#include "common/random.hpp"
#include "sctp/association.hpp"
#include "sim/network.hpp"

namespace rtcpeer::sim {
namespace {

constexpr std::size_t kMessage = 16 * 1024;
constexpr std::size_t kReadCost = 64;  // Session::readCost: bytes + 64 per message
constexpr Duration kFlood = std::chrono::seconds(10);
constexpr Duration kSenderTick = std::chrono::milliseconds(1);

std::uint8_t fill(std::uint32_t index, std::size_t at) { return static_cast<std::uint8_t>(index * 7 + at * 13 + (at >> 9)); }

class Sender final : public Endpoint {
 public:
  Sender(Network& net, SocketAddress local, SocketAddress remote, sctp::Options o)
      : net_(net), local_(local), remote_(remote), rng_(1), assoc(o, rng_) {
    net_.bind(*this, local_);
  }
  ~Sender() override { net_.unbind(local_); }
  void onDatagram(const SocketAddress&, const SocketAddress&, ByteView d, Timestamp now) override {
    assoc.handleInput(d, now);
    pump(now);
  }
  void onTimeout(Timestamp now) override {
    if (assoc.nextDeadline() <= now) assoc.handleTimeout(now);
    if (tick_ <= now) tick_ = now + kSenderTick;
    pump(now);
  }
  Timestamp nextDeadline() const override { return earliest(assoc.nextDeadline(), flooding ? tick_ : kNever); }

  void pump(Timestamp now) {
    // As fast as it can: queue messages until the association refuses one (its send buffer is full).
    while (flooding && assoc.state() == sctp::State::Established) {
      buf_.resize(kMessage);
      storeBe32(buf_.data(), sent);
      for (std::size_t i = 4; i < kMessage; ++i) buf_[i] = fill(sent, i);
      if (!assoc.send(1, 53, buf_, {}, now).ok()) {
        ++refused;
        break;
      }
      ++sent;
    }
    peakQueued = std::max(peakQueued, assoc.totalBufferedAmount());
    while (auto p = assoc.pollTransmit(now)) net_.send(local_, remote_, *p);
    while (auto e = assoc.pollEvent())
      if (e->type != sctp::Event::Type::Connected) ADD_FAILURE() << "sender: " << e->reason;
  }

  bool flooding = true;
  std::uint32_t sent = 0;
  std::uint64_t refused = 0;
  std::size_t peakQueued = 0;

 private:
  Network& net_;
  SocketAddress local_, remote_;
  SeededRandom rng_;
  Bytes buf_;
  Timestamp tick_{};

 public:
  sctp::Association assoc;
};

class Reader final : public Endpoint {
 public:
  Reader(Network& net, SocketAddress local, SocketAddress remote, sctp::Options o)
      : net_(net), local_(local), remote_(remote), rng_(2), assoc(o, rng_) {
    net_.bind(*this, local_);
  }
  ~Reader() override { net_.unbind(local_); }
  void onDatagram(const SocketAddress&, const SocketAddress&, ByteView d, Timestamp now) override {
    assoc.handleInput(d, now);
    pump(now);
  }
  void onTimeout(Timestamp now) override {
    assoc.handleTimeout(now);
    pump(now);
  }
  Timestamp nextDeadline() const override { return assoc.nextDeadline(); }

  void pump(Timestamp now) {
    while (auto m = assoc.pollMessage()) {
      assoc.holdUnread(m->payload.size() + kReadCost);  // in the inbox: holds the window until read
      inboxBytes += m->payload.size() + kReadCost;
      inbox.push_back(std::move(m->payload));
    }
    peakHeld = std::max(peakHeld, assoc.metrics().receiveBuffered);  // reassembly + deferred + the inbox
    if (reading) read();
    while (auto p = assoc.pollTransmit(now)) net_.send(local_, remote_, *p);
    while (auto e = assoc.pollEvent())
      if (e->type != sctp::Event::Type::Connected) ADD_FAILURE() << "reader: " << e->reason;
  }

  void read() {
    while (!inbox.empty()) {
      Bytes& m = inbox.front();
      ASSERT_EQ(m.size(), kMessage);
      ASSERT_EQ(loadBe32(m.data()), received) << "out of order";
      for (std::size_t i = 4; i < kMessage; ++i)
        if (m[i] != fill(received, i)) FAIL() << "message " << received << " corrupt at byte " << i;
      ++received;
      inboxBytes -= m.size() + kReadCost;
      assoc.releaseUnread(m.size() + kReadCost);
      assoc.recycle(std::move(m));
      inbox.pop_front();
    }
  }

  bool reading = false;
  std::deque<Bytes> inbox;
  std::size_t inboxBytes = 0, peakHeld = 0;
  std::uint32_t received = 0;

 private:
  Network& net_;
  SocketAddress local_, remote_;
  SeededRandom rng_;

 public:
  sctp::Association assoc;
};

TEST(Flood, TenSecondsAgainstAReaderThatNeverReadsThenEverythingDrainsInOrder) {
  for (const bool idata : {false, true}) {
    SCOPED_TRACE(idata ? "I-DATA" : "DATA");
    Network net(idata ? 3 : 4);
    LinkConfig link;
    link.delay = std::chrono::milliseconds(10);
    link.bandwidthBps = 200'000'000;
    link.queueBytes = 512 * 1024;
    link.loss = 0.001;
    net.setDefaultLink(link);
    sctp::Options o;  // the defaults a PeerConnection uses: 4 MiB window, 16 MiB send buffer, 256 KiB messages
    o.enableIData = idata;
    const auto a = *SocketAddress::parse("10.0.0.1", 5000), b = *SocketAddress::parse("10.0.0.2", 5000);
    Sender s(net, a, b, o);
    Reader r(net, b, a, o);
    s.assoc.connect(net.now());
    r.assoc.connect(net.now());
    s.pump(net.now());
    r.pump(net.now());
    ASSERT_TRUE(net.runUntil([&] { return s.assoc.state() == sctp::State::Established && s.sent > 0; },
                             std::chrono::seconds(5)));
    const Timestamp start = net.now();
    // Half-way, the window has long been closed: from then on nothing more reaches the reader.
    net.runFor(kFlood / 2);
    const std::size_t atHalf = r.inbox.size();
    net.runFor(kFlood / 2);
    s.flooding = false;
    const std::size_t stalledAt = r.inbox.size();
    // Stalled: zero window probes may still land up to the receiver's hard cap (window + one maximum message),
    // no further.
    EXPECT_LE(stalledAt - atHalf, o.maxMessageSize / kMessage + 1) << "the sender kept delivering to a reader "
                                                                      "that does not read";
    EXPECT_GT(s.refused, 0u) << "the sender never saw back-pressure";
    EXPECT_EQ(s.assoc.metrics().peerRwnd, 0u);
    EXPECT_LE(r.peakHeld, o.receiveWindow + o.maxMessageSize + kMessage + kReadCost);
    EXPECT_LE(s.peakQueued, o.maxSendBuffer);
    EXPECT_EQ(s.assoc.state(), sctp::State::Established);
    std::printf("flood %s: %.0f virtual s; sender queued %u messages (%zu KiB peak queue, send() refused %llu "
                "times); reader holds %zu unread (%zu at half time; %zu KiB, peak %zu KiB incl. reassembly)\n",
                idata ? "I-DATA" : "DATA", std::chrono::duration<double>(net.now() - start).count(), s.sent,
                s.peakQueued / 1024, static_cast<unsigned long long>(s.refused), stalledAt, atHalf, r.inboxBytes / 1024,
                r.peakHeld / 1024);
    // The reader drains everything: in order, byte-exact, nothing lost.
    r.reading = true;
    r.read();
    r.pump(net.now());
    ASSERT_TRUE(net.runUntil([&] { return r.received == s.sent || ::testing::Test::HasFatalFailure(); },
                             std::chrono::seconds(120)))
        << r.received << " of " << s.sent;
    EXPECT_EQ(r.received, s.sent);
    EXPECT_EQ(s.assoc.totalBufferedAmount(), 0u);
    EXPECT_EQ(r.assoc.metrics().receiveBuffered, 0u);
    EXPECT_EQ(r.assoc.state(), sctp::State::Established);
  }
}

}  // namespace
}  // namespace rtcpeer::sim
