// MultiplayerPeer's unreliable channels under loss. A PeerConnection opens real sockets and cannot run on the
// simulator, so this drives the layer below on it: two SCTP associations over a lossy simulated link, each of
// Godot's three reserved channels on its negotiated stream with exactly the options MultiplayerPeer gives it
// (multiplayer::channelLayout -> the SendOptions src/peer derives from them). A 60 Hz game loop sends on all
// three; the reliable one delivers everything but stalls behind retransmissions; the unreliable ones drop lost
// packets: the unordered one never waits at all, the ordered one only until the gap is skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "multiplayer/protocol.hpp"
#include "unit/sctp/harness.hpp"

namespace rtcpeer::sctp {
namespace {

using testing::SimPeer;
using testing::testOptions;

SocketAddress addr(const char* ip) { return *SocketAddress::parse(ip, 5000); }

struct StreamStats {
  int delivered = 0;
  Duration maxLatency{0};
  bool inOrder = true;
  std::int64_t last = -1;
};

TEST(MultiplayerLoss, UnreliableChannelsDropInsteadOfStalling) {
  const auto layout = multiplayer::channelLayout({}, 1);
  ASSERT_EQ(layout.size(), 3u);
  for (std::uint64_t seed : {11, 12}) {
    sim::Network net(seed);
    sim::LinkConfig link;
    link.delay = Duration(40'000);  // 40 ms one way
    link.loss = 0.08;
    net.setDefaultLink(link);
    SimPeer a(net, addr("10.0.0.1"), addr("10.0.0.2"), testOptions(), seed * 2);
    SimPeer b(net, addr("10.0.0.2"), addr("10.0.0.1"), testOptions(), seed * 2 + 1);
    std::map<std::uint16_t, StreamStats> stats;
    std::vector<Timestamp> sentAt;
    b.onMessage = [&](const Message& m) {
      auto& s = stats[m.stream];
      ++s.delivered;
      s.maxLatency = std::max(s.maxLatency, net.now() - sentAt.at(m.ppid));
      if (static_cast<std::int64_t>(m.ppid) <= s.last) s.inOrder = false;
      s.last = m.ppid;
    };
    a.assoc.connect(net.now());
    b.assoc.connect(net.now());
    a.flush(net.now());
    b.flush(net.now());
    ASSERT_TRUE(net.runUntil([&] { return a.assoc.state() == State::Established && b.assoc.state() == State::Established; },
                             Duration(30'000'000)));

    const std::uint32_t ticks = 600;  // 10 s at 60 Hz
    const Bytes payload(120, 0x5a);
    for (std::uint32_t t = 0; t < ticks; ++t) {
      sentAt.push_back(net.now());
      for (const auto& ch : layout) {
        SendOptions o;
        o.unordered = !ch.init.ordered;
        if (ch.init.maxPacketLifeTime) o.lifetime = std::chrono::milliseconds(*ch.init.maxPacketLifeTime);
        ASSERT_TRUE(a.assoc.send(*ch.init.id, t, payload, o, net.now()).ok());
      }
      a.flush(net.now());
      net.runFor(Duration(16'667));
    }
    net.runFor(Duration(10'000'000));

    const auto& reliable = stats[1];
    const auto& ordered = stats[2];
    const auto& unreliable = stats[3];
    std::printf("seed %llu: delivered reliable %d ordered %d unreliable %d of %u; max latency ms: %lld %lld %lld\n",
                static_cast<unsigned long long>(seed), reliable.delivered, ordered.delivered, unreliable.delivered,
                ticks, static_cast<long long>(reliable.maxLatency.count() / 1000),
                static_cast<long long>(ordered.maxLatency.count() / 1000),
                static_cast<long long>(unreliable.maxLatency.count() / 1000));
    EXPECT_EQ(reliable.delivered, static_cast<int>(ticks));
    EXPECT_TRUE(reliable.inOrder);
    EXPECT_TRUE(ordered.inOrder);
    // Lost packets stay lost on both unreliable channels (about 8 % of them)...
    EXPECT_LT(unreliable.delivered, static_cast<int>(ticks * 97 / 100));
    EXPECT_LT(ordered.delivered, static_cast<int>(ticks * 97 / 100));
    EXPECT_GT(unreliable.delivered, static_cast<int>(ticks * 80 / 100));
    // ...and nothing waits for a retransmission: an unordered packet arrives one link delay after it was sent
    // (plus serialization in the same tick), while the reliable channel stalls for at least a round trip.
    EXPECT_LE(unreliable.maxLatency, Duration(45'000));
    EXPECT_GE(reliable.maxLatency, Duration(120'000));
    // The ordered unreliable channel cannot deliver past a gap until the sender's FORWARD-TSN (RFC 3758) skips
    // it, so its packets wait up to about one retransmission time behind a loss (250-270 ms here), never longer:
    // the lost packet is abandoned, not retransmitted until it arrives.
    EXPECT_LE(ordered.maxLatency, Duration(400'000));
  }
}

}  // namespace
}  // namespace rtcpeer::sctp
