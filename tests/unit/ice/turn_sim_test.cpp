// TURN on the deterministic network simulator: two agents behind symmetric NATs (which no direct or
// server-reflexive pair can cross) connect through a TURN server and keep exchanging data for 30 virtual minutes
// while NAT mappings (30 s idle timeout), the allocation, the permissions and the channel bindings must all be
// kept alive; and relay-only policy on open addresses.
#include <gtest/gtest.h>

#include <memory>

#include "ice/agent.hpp"
#include "sim/network.hpp"
#include "unit/ice/fake_turn.hpp"

namespace rtcpeer::ice {
namespace {

using sim::Network;
using sim::RealmId;

SocketAddress addr(const char* ip, std::uint16_t port = 0) { return *SocketAddress::parse(ip, port); }
const SocketAddress kTurn = addr("100.64.0.1", 3478);

/// The fake TURN server as a simulator endpoint, bound to its address and the relayed addresses it hands out.
class TurnEndpoint : public sim::Endpoint {
 public:
  explicit TurnEndpoint(Network& net)
      : server([&net] { return net.now(); },
               [&net](const SocketAddress& from, const SocketAddress& to, ByteView d) { net.send(from, to, d); },
               net.random(), kTurn) {
    net.bind(*this, kTurn);
    for (std::uint16_t i = 1; i <= 4; ++i) net.bind(*this, addr("10.99.0.1", static_cast<std::uint16_t>(50000 + i)));
  }
  void onDatagram(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now) override {
    server.onWire({now, remote, local, Bytes(data.begin(), data.end())});
  }
  void onTimeout(Timestamp) override {}
  Timestamp nextDeadline() const override { return kNever; }

  test::FakeTurn server;
};

/// One agent with one socket; candidates trickle to the peer; application datagrams are counted.
class Peer : public sim::Endpoint {
 public:
  Peer(Network& net, AgentConfig config, std::uint64_t seed, SocketAddress local, RealmId realm)
      : net_(net), random_(seed), agent(std::move(config), random_), local_(local), realm_(realm) {
    net.bind(*this, local, realm);
  }
  void start(Peer& peer) {
    peer_ = &peer;
    peer.agent.setRemoteCredentials(agent.localCredentials().ufrag, agent.localCredentials().pwd, net_.now());
    agent.startGathering({&local_, 1}, net_.now());
    flush();
  }
  void send(ByteView payload) {
    if (auto w = agent.wrapForSelectedPair(payload, net_.now())) net_.send(w->local, w->remote, w->data, realm_);
    flush();
  }
  void onDatagram(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now) override {
    if (auto app = agent.handleDatagram(local, remote, data, now); app && agent.isRemoteValid(app->local, app->remote))
      ++received;
    flush();
  }
  void onTimeout(Timestamp now) override {
    agent.handleTimeout(now);
    flush();
  }
  Timestamp nextDeadline() const override { return agent.nextDeadline(); }
  void flush() {
    while (auto t = agent.pollTransmit()) net_.send(t->local, t->remote, t->data, realm_);
    while (auto e = agent.pollEvent()) {
      if (!peer_) continue;
      if (e->kind == Event::Kind::CandidateGathered) {
        EXPECT_TRUE(peer_->agent.addRemoteCandidate(e->candidate, net_.now()));
        peer_->flush();
      } else if (e->kind == Event::Kind::GatheringComplete) {
        peer_->agent.addRemoteEndOfCandidates(net_.now());
        peer_->flush();
      }
    }
  }
  bool connected() const { return agent.state() == State::Connected || agent.state() == State::Completed; }

 private:
  Network& net_;
  SeededRandom random_;

 public:
  Agent agent;
  int received = 0;

 private:
  SocketAddress local_;
  RealmId realm_;
  Peer* peer_ = nullptr;
};

AgentConfig withTurn(Role role, const test::FakeTurn& s, bool relayOnly) {
  AgentConfig c;
  c.role = role;
  c.relayOnly = relayOnly;
  c.stunServers = {kTurn};  // coturn answers Binding too; the fake does not, so srflx gathering times out
  c.gatheringTimeout = 2s;
  c.turnServers = {{kTurn, TurnTransport::Udp, s.user, s.password}};
  return c;
}

TEST(TurnSim, SymmetricNatsConnectThroughTheRelayAndStayUpForThirtyMinutes) {
  Network net(42);
  TurnEndpoint turn(net);
  const RealmId natA = net.addNat(sim::NatType::Symmetric, addr("203.0.113.1"));
  const RealmId natB = net.addNat(sim::NatType::Symmetric, addr("198.51.100.1"));
  Peer a(net, withTurn(Role::Controlling, turn.server, false), 1, addr("192.168.1.2", 5000), natA);
  Peer b(net, withTurn(Role::Controlled, turn.server, false), 2, addr("192.168.1.2", 6000), natB);
  a.start(b);
  b.start(a);
  ASSERT_TRUE(net.runUntil([&] { return a.connected() && b.connected(); }, 20s));
  ASSERT_EQ(a.agent.selectedPair()->localType, CandidateType::Relay);
  // The relayed address is the peer's view of A (its candidate went through signalling).
  EXPECT_EQ(b.agent.selectedPair()->remote.ipString(), "10.99.0.1");

  const Bytes data = [] {
    Bytes d(300, 0x42);
    d[0] = 23;
    return d;
  }();
  int sent = 0;
  for (int second = 0; second < 30 * 60; ++second) {
    a.send(data);
    b.send(data);
    ++sent;
    net.runFor(1s);
    ASSERT_TRUE(a.connected() && b.connected()) << "at second " << second;
  }
  net.runFor(1s);
  // Datagrams sent before the channel was bound may race it; everything after arrives.
  EXPECT_GE(a.received, sent - 2);
  EXPECT_GE(b.received, sent - 2);
  const auto& c = turn.server.count;
  EXPECT_EQ(c.expiredDrops, 0);
  EXPECT_EQ(c.allocates, 2);
  EXPECT_GE(c.refreshes, 2 * 3);    // 600 s lifetime, refreshed at 450 s
  EXPECT_GE(c.channelBinds, 2 * 4);  // bound, then every 8 minutes
  EXPECT_GT(c.channelDataIn, 2 * sent);
}

TEST(TurnSim, RelayOnlySignalsOnlyRelayCandidates) {
  Network net(7);
  TurnEndpoint turn(net);
  Peer a(net, withTurn(Role::Controlling, turn.server, true), 1, addr("192.0.2.10", 5000), Network::kInternet);
  Peer b(net, withTurn(Role::Controlled, turn.server, true), 2, addr("192.0.2.20", 6000), Network::kInternet);
  a.start(b);
  b.start(a);
  ASSERT_TRUE(net.runUntil([&] { return a.connected() && b.connected(); }, 20s));
  for (const Peer* p : {&a, &b}) {
    ASSERT_EQ(p->agent.localCandidates().size(), 1u);
    EXPECT_EQ(p->agent.localCandidates()[0].type, CandidateType::Relay);
    EXPECT_EQ(p->agent.selectedPair()->localType, CandidateType::Relay);
  }
  // A direct path exists (no NAT), but relay-only never uses it: the host sockets only talk to the server.
  EXPECT_EQ(a.agent.selectedPair()->remote.ipString(), "10.99.0.1");
}

}  // namespace
}  // namespace rtcpeer::ice
