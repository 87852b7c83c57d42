// PeerConnection-level tests on the simulator: two sans-IO cores (peer::Connection) behind every pair of NAT kinds,
// through STUN and TURN servers; loss, duplication, reordering and delay during setup and transfer; every channel
// kind; consent loss and recovery; ICE restart. Virtual time and seeded: a run is the same every time.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "sim/peer_world.hpp"

namespace rtcpeer::sim::peertest {
namespace {

using namespace std::chrono_literals;

const char* natName(NatType t) {
  switch (t) {
    case NatType::FullCone: return "FullCone";
    case NatType::AddressRestricted: return "AddressRestricted";
    case NatType::PortRestricted: return "PortRestricted";
    case NatType::Symmetric: return "Symmetric";
  }
  return "?";
}

/// Every message 0..count-1 exactly once, intact, in order.
void expectInOrder(const SimPeer::Channel& c, std::uint32_t count, const std::string& what) {
  ASSERT_EQ(c.received.size(), count) << what;
  for (std::uint32_t i = 0; i < count; ++i) {
    auto index = checkMessage(c.received[i]);
    ASSERT_TRUE(index) << what << ": message " << i << " is corrupt";
    ASSERT_EQ(*index, i) << what << ": out of order";
  }
}

/// Intact messages, none twice; returns their indices in arrival order.
std::vector<std::uint32_t> intactUnique(const SimPeer::Channel& c, const std::string& what) {
  std::vector<std::uint32_t> indices;
  std::set<std::uint32_t> seen;
  for (const auto& m : c.received) {
    auto index = checkMessage(m);
    EXPECT_TRUE(index) << what << ": a corrupt message";
    if (!index) continue;
    EXPECT_TRUE(seen.insert(*index).second) << what << ": message " << *index << " delivered twice";
    indices.push_back(*index);
  }
  return indices;
}

// ---------------------------------------------------------------------------------------------------------------
// Every NAT kind on each side. Pairs that no direct or server-reflexive path crosses (a symmetric NAT facing a
// symmetric or port-restricted one) must end up on the TURN relay; every pair must carry data both ways.

struct NatCase {
  NatType a, b;
};

class NatMatrix : public ::testing::TestWithParam<NatCase> {};

TEST_P(NatMatrix, ConnectsAndCarriesDataBothWays) {
  const auto [natA, natB] = GetParam();
  World w(7);
  auto a = w.makePeer("a", w.config(), "192.168.1.10", natA, "203.0.113.1");
  auto b = w.makePeer("b", w.config(), "192.168.2.10", natB, "198.51.100.1");
  w.pair(*a, *b);
  ASSERT_TRUE(w.connect()) << "states a " << a->states.size() << ", b " << b->states.size();
  a->transfer("data", 40, 1000);
  b->transfer("data", 40, 1000);
  ASSERT_TRUE(w.runUntil([&] { return a->channels["data"].received.size() == 40 &&
                                      b->channels["data"].received.size() == 40; },
                         20s));
  expectInOrder(b->channels["data"], 40, "a -> b");
  expectInOrder(a->channels["data"], 40, "b -> a");
  EXPECT_EQ(a->states, (std::vector{ConnectionState::Connecting, ConnectionState::Connected}));
  EXPECT_EQ(b->states, (std::vector{ConnectionState::Connecting, ConnectionState::Connected}));
  const bool needsRelay = (natA == NatType::Symmetric && (natB == NatType::Symmetric || natB == NatType::PortRestricted)) ||
                          (natB == NatType::Symmetric && natA == NatType::PortRestricted);
  const bool relayed = a->selectedType() == "relay" || b->selectedType() == "relay";
  if (needsRelay) {
    EXPECT_TRUE(relayed) << "a " << a->selectedType() << ", b " << b->selectedType();
  }
  EXPECT_GT(w.turn.server.count.allocates, 0);
}

std::vector<NatCase> allNatPairs() {
  std::vector<NatCase> v;
  for (auto x : {NatType::FullCone, NatType::AddressRestricted, NatType::PortRestricted, NatType::Symmetric})
    for (auto y : {NatType::FullCone, NatType::AddressRestricted, NatType::PortRestricted, NatType::Symmetric})
      v.push_back({x, y});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Sim, NatMatrix, ::testing::ValuesIn(allNatPairs()),
                         [](const ::testing::TestParamInfo<NatCase>& i) {
                           return std::string(natName(i.param.a)) + "_" + natName(i.param.b);
                         });

// ---------------------------------------------------------------------------------------------------------------
// A bad path from the first packet on: loss, duplication, reordering, delay and jitter on every link, through setup
// (STUN, TURN, checks, DTLS flights, SCTP INIT, DCEP) and a transfer both ways.

class BadPath : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(BadPath, SetupAndTransferSurviveLossDuplicationReordering) {
  World w(GetParam());
  LinkConfig link;
  link.delay = 25ms;
  link.jitter = 10ms;
  link.loss = 0.05;
  link.duplicate = 0.03;
  link.reorder = 0.05;
  link.reorderDelay = 30ms;
  w.net.setDefaultLink(link);
  auto a = w.makePeer("a", w.config(), "192.168.1.10", NatType::PortRestricted, "203.0.113.1");
  auto b = w.makePeer("b", w.config(), "192.168.2.10", NatType::AddressRestricted, "198.51.100.1");
  w.pair(*a, *b);
  ASSERT_TRUE(w.connect());
  a->transfer("data", 300, 1100);
  b->transfer("data", 100, 5000);  // larger messages: fragmented over several packets, reassembled
  ASSERT_TRUE(w.runUntil([&] { return b->channels["data"].received.size() == 300 &&
                                      a->channels["data"].received.size() == 100; },
                         120s));
  expectInOrder(b->channels["data"], 300, "a -> b");
  expectInOrder(a->channels["data"], 100, "b -> a");
  EXPECT_GT(w.net.stats().lost, 0u);
  EXPECT_GT(w.net.stats().duplicated, 0u);
  EXPECT_GT(a->core->stats().retransmissions + b->core->stats().retransmissions, 0u);
}

INSTANTIATE_TEST_SUITE_P(Sim, BadPath, ::testing::Values(1, 2, 3));

TEST(PeerSim, SameSeedSameRun) {
  auto run = [](std::uint64_t seed) {
    World w(seed);
    LinkConfig link;
    link.delay = 10ms;
    link.loss = 0.02;
    w.net.setDefaultLink(link);
    auto a = w.makePeer("a", w.config(false), "100.70.0.1");
    auto b = w.makePeer("b", w.config(false), "100.70.0.2");
    w.pair(*a, *b);
    EXPECT_TRUE(w.connect());
    a->transfer("data", 50, 800);
    EXPECT_TRUE(w.runUntil([&] { return b->channels["data"].received.size() == 50; }, 30s));
    return std::pair(w.net.stats().delivered, w.net.now());
  };
  // DTLS draws from OpenSSL's generator (keys, randoms), so the bytes differ between runs; what the network and
  // the cores do with them (how many datagrams, when) does not.
  EXPECT_EQ(run(11), run(11));
}

// ---------------------------------------------------------------------------------------------------------------
// Every channel kind on one connection over a lossy, reordering path.

TEST(PeerSim, EveryChannelKindKeepsItsPromise) {
  World w(5);
  LinkConfig link;
  link.delay = 20ms;
  link.loss = 0.04;
  link.reorder = 0.05;
  link.reorderDelay = 15ms;
  w.net.setDefaultLink(link);
  auto a = w.makePeer("a", w.config(false), "100.70.0.1");
  auto b = w.makePeer("b", w.config(false), "100.70.0.2");
  w.pair(*a, *b);
  DataChannelInit unordered;
  unordered.ordered = false;
  DataChannelInit noRetransmits;
  noRetransmits.ordered = false;
  noRetransmits.maxRetransmits = 0;
  DataChannelInit lifetime;
  lifetime.maxPacketLifeTime = 30;
  DataChannelInit negotiated;
  negotiated.negotiated = true;
  negotiated.id = 7;
  ASSERT_TRUE(w.connect("reliable"));
  a->create("negotiated", negotiated);  // first: the in-band channels must not take its id on either side
  b->create("negotiated", negotiated);
  a->create("unordered", unordered);
  a->create("rexmit0", noRetransmits);
  a->create("lifetime", lifetime);
  ASSERT_TRUE(w.runUntil([&] {
    for (const char* l : {"unordered", "rexmit0", "lifetime", "negotiated"})
      if (!b->channels[l].opened || a->readyState(l) != ReadyState::Open) return false;
    return true;
  }, 10s));
  const std::uint32_t n = 300;
  for (const char* l : {"reliable", "unordered", "rexmit0", "lifetime", "negotiated"}) a->transfer(l, n, 300);
  // The reliable ones complete; then wait a little longer for stragglers of the partially reliable ones.
  ASSERT_TRUE(w.runUntil([&] {
    return a->allSent() && b->channels["reliable"].received.size() == n &&
           b->channels["unordered"].received.size() == n && b->channels["negotiated"].received.size() == n;
  }, 60s));
  w.runUntil([] { return false; }, 2s);

  expectInOrder(b->channels["reliable"], n, "reliable ordered");
  expectInOrder(b->channels["negotiated"], n, "negotiated");
  auto unord = intactUnique(b->channels["unordered"], "unordered");
  EXPECT_EQ(unord.size(), n);
  auto lossy = intactUnique(b->channels["rexmit0"], "maxRetransmits 0");
  EXPECT_LT(lossy.size(), n) << "nothing was lost: was it retransmitted?";
  EXPECT_GT(lossy.size(), n / 2);
  auto timed = intactUnique(b->channels["lifetime"], "maxPacketLifeTime 30");
  EXPECT_LT(timed.size(), n) << "nothing expired on a 20 ms path with 4 % loss";
  EXPECT_TRUE(std::is_sorted(timed.begin(), timed.end())) << "an ordered channel delivered out of order";
  // The negotiated channel has the agreed id on both sides and no DCEP: the peer never "received" it.
  EXPECT_EQ(a->core->channelInfo(a->channels["negotiated"].key)->stream, std::optional<std::uint16_t>(7));
  EXPECT_EQ(b->core->channelInfo(b->channels["negotiated"].key)->stream, std::optional<std::uint16_t>(7));
  EXPECT_FALSE(b->core->channelInfo(b->channels["negotiated"].key)->remote);
}

// An unordered reliable channel hands over what arrives without waiting for the retransmission of a lost message
// (RFC 8831 6.6, RFC 9260 6.6), and still delivers every message once.
TEST(PeerSim, UnorderedDeliveryDoesNotWaitForRetransmissions) {
  World w(5);
  LinkConfig link;
  link.delay = 20ms;
  link.loss = 0.05;
  w.net.setDefaultLink(link);
  auto a = w.makePeer("a", w.config(false), "100.70.0.1");
  auto b = w.makePeer("b", w.config(false), "100.70.0.2");
  w.pair(*a, *b);
  DataChannelInit unordered;
  unordered.ordered = false;
  ASSERT_TRUE(w.connect("u", unordered));
  w.runUntil([] { return false; }, 1s);  // the DCEP ACK is in: until then the opener sends ordered (RFC 8832 6)
  a->transfer("u", 300, 1000);
  ASSERT_TRUE(w.runUntil([&] { return b->channels["u"].received.size() == 300; }, 60s));
  auto indices = intactUnique(b->channels["u"], "unordered");
  EXPECT_EQ(indices.size(), 300u);
  EXPECT_FALSE(std::is_sorted(indices.begin(), indices.end())) << "unordered delivery waited for retransmissions";
  EXPECT_GT(a->core->stats().retransmissions, 0u);
}

// ---------------------------------------------------------------------------------------------------------------
// Consent (RFC 7675): a dead path reads Disconnected, then Failed with the reason; a path back in time recovers.

struct Direct {
  World w{3};
  std::unique_ptr<SimPeer> a, b;
  Direct(const Configuration& c) {
    a = w.makePeer("a", c, "100.70.0.1");
    b = w.makePeer("b", c, "100.70.0.2");
    w.pair(*a, *b);
  }
  void cut(bool dead) {
    LinkConfig link;
    link.loss = dead ? 1.0 : 0.0;
    w.net.setLink(ip("100.70.0.1"), ip("100.70.0.2"), link);
    w.net.setLink(ip("100.70.0.2"), ip("100.70.0.1"), link);
  }
};

TEST(PeerSim, ConsentLossFailsTheConnectionWithAReason) {
  Configuration c;
  c.disconnectedTimeout = 4s;
  c.failedTimeout = 15s;
  Direct d(c);
  ASSERT_TRUE(d.w.connect());
  d.cut(true);
  const Timestamp cutAt = d.w.net.now();
  ASSERT_TRUE(d.w.runUntil([&] { return d.a->state() == ConnectionState::Disconnected; }, 10s));
  EXPECT_GE(d.w.net.now() - cutAt, 3s);
  ASSERT_TRUE(d.w.runUntil([&] { return d.a->state() == ConnectionState::Failed &&
                                        d.b->state() == ConnectionState::Failed; },
                           60s));
  EXPECT_EQ(d.a->states, (std::vector{ConnectionState::Connecting, ConnectionState::Connected,
                                      ConnectionState::Disconnected, ConnectionState::Failed}));
  EXPECT_NE(d.a->core->failureReason().find("ICE failed"), std::string::npos) << d.a->core->failureReason();
  EXPECT_NE(d.a->core->failureReason().find("consent"), std::string::npos) << d.a->core->failureReason();
  // The channels close with the connection's reason.
  EXPECT_TRUE(d.a->channels["data"].closed);
  EXPECT_EQ(d.a->channels["data"].closeReason, d.a->core->failureReason());
  EXPECT_EQ(d.a->readyState("data"), ReadyState::Closed);
}

TEST(PeerSim, APathBackBeforeConsentExpiresRecovers) {
  Configuration c;
  c.disconnectedTimeout = 4s;
  c.failedTimeout = 30s;
  Direct d(c);
  ASSERT_TRUE(d.w.connect());
  d.cut(true);
  ASSERT_TRUE(d.w.runUntil([&] { return d.a->state() == ConnectionState::Disconnected &&
                                        d.b->state() == ConnectionState::Disconnected; },
                           10s));
  d.a->transfer("data", 20, 500);  // queued while the path is down
  d.cut(false);
  ASSERT_TRUE(d.w.runUntil([&] { return d.a->state() == ConnectionState::Connected &&
                                        d.b->channels["data"].received.size() == 20; },
                           30s));
  expectInOrder(d.b->channels["data"], 20, "after recovery");
}

// ---------------------------------------------------------------------------------------------------------------
// ICE restart (RFC 8445 9): new credentials on both sides, new checks, and the channel carries data throughout.

TEST(PeerSim, IceRestartKeepsTheConnectionAndItsChannels) {
  World w(9);
  auto a = w.makePeer("a", w.config(), "192.168.1.10", NatType::FullCone, "203.0.113.1");
  auto b = w.makePeer("b", w.config(), "192.168.2.10", NatType::PortRestricted, "198.51.100.1");
  w.pair(*a, *b);
  ASSERT_TRUE(w.connect());
  a->transfer("data", 200, 1000);
  ASSERT_TRUE(w.runUntil([&] { return b->channels["data"].received.size() >= 50; }, 10s));
  const auto ufragA = a->core->localCredentials().ufrag, ufragB = b->core->localCredentials().ufrag;
  const auto checksBefore = a->core->stats().iceChecksSent;
  const int candidatesBefore = a->candidatesSent;
  a->core->restartIce(w.net.now());
  a->offer();
  ASSERT_TRUE(w.runUntil([&] { return b->channels["data"].received.size() == 200 &&
                                      b->core->signalingState() == SignalingState::Stable &&
                                      a->core->signalingState() == SignalingState::Stable; },
                         20s));
  w.runUntil([] { return false; }, 3s);  // the restarted checks finish
  EXPECT_NE(a->core->localCredentials().ufrag, ufragA);
  EXPECT_NE(b->core->localCredentials().ufrag, ufragB);
  EXPECT_GT(a->candidatesSent, candidatesBefore);
  EXPECT_GT(a->core->stats().iceChecksSent, checksBefore);
  expectInOrder(b->channels["data"], 200, "across the restart");
  EXPECT_EQ(a->state(), ConnectionState::Connected);
  EXPECT_EQ(b->state(), ConnectionState::Connected);
  EXPECT_EQ(a->states, (std::vector{ConnectionState::Connecting, ConnectionState::Connected}));
  // Data still flows on the pair the restarted checks selected.
  a->transfer("data", 20, 1000);
  ASSERT_TRUE(w.runUntil([&] { return b->channels["data"].received.size() == 220; }, 10s));
  expectInOrder(b->channels["data"], 220, "after the restart");
}

// ---------------------------------------------------------------------------------------------------------------
// Closing: the peer's close() reaches us as Closed (SCTP ABORT, then close_notify), with the channels' last
// messages delivered first.

TEST(PeerSim, ThePeersCloseArrivesAfterItsLastMessages) {
  World w(4);
  auto a = w.makePeer("a", w.config(false), "100.70.0.1");
  auto b = w.makePeer("b", w.config(false), "100.70.0.2");
  w.pair(*a, *b);
  ASSERT_TRUE(w.connect());
  for (std::uint32_t i = 0; i < 5; ++i)
    ASSERT_EQ(a->core->send(a->channels["data"].key, makeMessage(i, 200), false, w.net.now()).code, Error::Ok);
  a->drain();
  a->core->close(w.net.now());
  a->drain();
  ASSERT_TRUE(w.runUntil([&] { return b->state() == ConnectionState::Closed; }, 5s));
  expectInOrder(b->channels["data"], 5, "before the close");
  EXPECT_TRUE(b->channels["data"].closed);
  EXPECT_NE(b->core->failureReason().find("the peer closed the connection"), std::string::npos)
      << b->core->failureReason();
}

// A process polling thousands of connections in turn (tests/unit/peer/crowd_test.cpp) services each one only every
// few seconds while they all set up at once. A peer polled once every 9 s of virtual time answers later than the
// SCTP handshake's fail-fast bound (5 s, meant for a peer whose SCTP never answers), and the whole setup (about six
// turns: 54 s) exceeds connectTimeout (30 s): a connection that keeps making progress must still connect, not be
// failed by a timer meant for a dead peer. Both slow; the offerer slow, facing a prompt answerer; and the reverse.
class SlowPoller : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(SlowPoller, PeersPolledEveryNineSecondsStillConnect) {
  World w(41);
  auto a = w.makePeer("a", w.config(false), "198.51.100.10");
  auto b = w.makePeer("b", w.config(false), "203.0.113.20");
  w.pair(*a, *b);
  a->pollEvery = std::chrono::seconds(GetParam().first);
  b->pollEvery = std::chrono::seconds(GetParam().second);
  const Timestamp start = w.net.now();
  a->create("data");
  a->offer();
  ASSERT_TRUE(w.runUntil([&] { return w.connected() && a->channels["data"].opened && b->channels["data"].opened; },
                         300s))
      << "a: " << (a->reasons.empty() ? "" : a->reasons.back()) << "; b: " << (b->reasons.empty() ? "" : b->reasons.back());
  if (GetParam().first && GetParam().second) {
    EXPECT_GT(w.net.now() - start, 30s);  // longer than connectTimeout
  }
  EXPECT_EQ(std::count(a->states.begin(), a->states.end(), ConnectionState::Failed), 0);
  EXPECT_EQ(std::count(b->states.begin(), b->states.end(), ConnectionState::Failed), 0);
  a->transfer("data", 3, 1000);
  ASSERT_TRUE(w.runUntil([&] { return b->channels["data"].received.size() == 3; }, 120s));
  expectInOrder(b->channels["data"], 3, "b");
}

INSTANTIATE_TEST_SUITE_P(Sim, SlowPoller, ::testing::Values(std::pair{9, 9}, std::pair{9, 0}, std::pair{0, 9}),
                         [](const auto& p) {
                           return "A" + std::to_string(p.param.first) + "sB" + std::to_string(p.param.second) + "s";
                         });

}  // namespace
}  // namespace rtcpeer::sim::peertest
