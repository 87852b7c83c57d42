// ICE agents on the deterministic network simulator: every pair of NAT types, loss, role conflicts, consent loss,
// restart. Candidates trickle through an instant signalling channel as the agents gather them.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "ice/agent.hpp"
#include "sim/network.hpp"
#include "sim/stun_server.hpp"
#include "stun/stun.hpp"

namespace rtcpeer::ice {
namespace {

using sim::Network;
using sim::NatType;
using sim::RealmId;

SocketAddress addr(const char* ip, std::uint16_t port = 0) { return *SocketAddress::parse(ip, port); }
ByteView toBytes(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }
const SocketAddress kStunServer = addr("100.64.0.1", 3478);

using sim::StunServer;

/// Adapter: the simulator drives one agent with one socket; candidates and end-of-candidates trickle to `peer`.
class IceEndpoint : public sim::Endpoint {
 public:
  IceEndpoint(Network& net, AgentConfig config, std::uint64_t seed, SocketAddress local, RealmId realm)
      : net_(net), random_(seed), agent(std::move(config), random_), local_(local), realm_(realm) {
    net.bind(*this, local, realm);
  }
  void start(IceEndpoint& peer) {
    peer_ = &peer;
    agent.startGathering({&local_, 1}, net_.now());
    flush();
  }
  void sendCredentials() {
    peer_->agent.setRemoteCredentials(agent.localCredentials().ufrag, agent.localCredentials().pwd, net_.now());
    peer_->flush();
  }
  void onDatagram(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now) override {
    if (auto app = agent.handleDatagram(local, remote, data, now); app && agent.isRemoteValid(app->local, app->remote))
      received.emplace_back(app->data.begin(), app->data.end());
    flush();
  }
  /// Sends an application datagram on the selected pair, as the PeerConnection does.
  bool sendApp(std::string_view text) {
    auto w = agent.wrapForSelectedPair(toBytes(text), net_.now());
    if (!w) return false;
    net_.send(w->local, w->remote, w->data, realm_);
    return true;
  }
  void onTimeout(Timestamp now) override {
    agent.handleTimeout(now);
    flush();
  }
  Timestamp nextDeadline() const override { return agent.nextDeadline(); }

  void flush() {
    while (auto t = agent.pollTransmit()) net_.send(t->local, t->remote, t->data, realm_);
    while (auto e = agent.pollEvent()) {
      if (e->kind == Event::Kind::StateChanged) states.push_back(e->state);
      if (e->kind == Event::Kind::SelectedPairChanged) selected = e->selected;
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
  Timestamp now() const { return net_.now(); }
  bool connected() const { return agent.state() == State::Connected || agent.state() == State::Completed; }

 private:
  Network& net_;
  SeededRandom random_;

 public:
  Agent agent;
  std::vector<State> states;
  std::optional<SelectedPair> selected;  // from the last SelectedPairChanged event
  std::vector<Bytes> received;           // application datagrams from a valid remote

 private:
  SocketAddress local_;
  RealmId realm_;
  IceEndpoint* peer_ = nullptr;
};

enum class Nat { None, FullCone, AddressRestricted, PortRestricted, Symmetric };
const char* name(Nat n) {
  switch (n) {
    case Nat::None: return "none";
    case Nat::FullCone: return "full-cone";
    case Nat::AddressRestricted: return "address-restricted";
    case Nat::PortRestricted: return "port-restricted";
    case Nat::Symmetric: return "symmetric";
  }
  return "?";
}

struct Scenario {
  Network net;
  StunServer server{net};
  std::unique_ptr<IceEndpoint> a, b;

  /// `beforeCredentials` runs once both agents gathered, before either has the other's credentials (no check yet).
  Scenario(std::uint64_t seed, Nat na, Nat nb, AgentConfig ca, AgentConfig cb, sim::LinkConfig link = {},
           const std::function<void(IceEndpoint& a, IceEndpoint& b)>& beforeCredentials = {})
      : net(seed) {
    if (link.delay == Duration::zero()) link.delay = 10ms;
    net.setDefaultLink(link);
    net.bind(server, kStunServer);
    ca.stunServers = cb.stunServers = {kStunServer};
    a = make(na, "198.51.100.1", "10.0.1.1", std::move(ca), seed * 2 + 1);
    b = make(nb, "203.0.113.1", "10.0.2.1", std::move(cb), seed * 2 + 2);
    a->start(*b);
    b->start(*a);
    if (beforeCredentials) beforeCredentials(*a, *b);
    a->sendCredentials();
    b->sendCredentials();
  }
  std::unique_ptr<IceEndpoint> make(Nat n, const char* publicIp, const char* privateIp, AgentConfig c,
                                    std::uint64_t seed) {
    if (n == Nat::None) return std::make_unique<IceEndpoint>(net, std::move(c), seed, addr(publicIp, 5000), 0);
    static constexpr NatType kTypes[] = {NatType::FullCone, NatType::FullCone, NatType::AddressRestricted,
                                         NatType::PortRestricted, NatType::Symmetric};
    RealmId realm = net.addNat(kTypes[static_cast<int>(n)], addr(publicIp));
    return std::make_unique<IceEndpoint>(net, std::move(c), seed, addr(privateIp, 5000), realm);
  }
  bool bothConnected(Duration limit) {
    return net.runUntil([&] { return a->connected() && b->connected(); }, limit);
  }
};

AgentConfig config(Role role) {
  AgentConfig c;
  c.role = role;
  c.failureTimeout = 10s;
  return c;
}

// RFC 8445 (and RFC 4787): without a relay, connectivity needs at least one endpoint-independent mapping on each
// path a check can take; symmetric NAT against port-restricted (or symmetric) filtering cannot be traversed.
bool canConnect(Nat x, Nat y) {
  auto hard = [](Nat n) { return n == Nat::Symmetric; };
  auto portFiltered = [](Nat n) { return n == Nat::PortRestricted || n == Nat::Symmetric; };
  return !((hard(x) && portFiltered(y)) || (hard(y) && portFiltered(x)));
}

TEST(IceSim, EveryPairOfNatTypes) {
  const Nat all[] = {Nat::None, Nat::FullCone, Nat::AddressRestricted, Nat::PortRestricted, Nat::Symmetric};
  for (Nat na : all) {
    for (Nat nb : all) {
      SCOPED_TRACE(std::string(name(na)) + " <-> " + name(nb));
      Scenario s(11, na, nb, config(Role::Controlling), config(Role::Controlled));
      const Timestamp start = s.net.now();
      if (canConnect(na, nb)) {
        ASSERT_TRUE(s.bothConnected(5s));
        auto pa = s.a->agent.selectedPair(), pb = s.b->agent.selectedPair();
        ASSERT_TRUE(pa && pb);
        EXPECT_EQ(s.a->agent.stats().authFailures + s.b->agent.stats().authFailures, 0u);
        // Stays up: consent every ~5 s also keeps the NAT mappings (30 s idle timeout) open.
        s.net.runFor(60s);
        EXPECT_TRUE(s.a->connected() && s.b->connected());
      } else {
        ASSERT_TRUE(s.net.runUntil(
            [&] { return s.a->agent.state() == State::Failed && s.b->agent.state() == State::Failed; }, 15s));
        EXPECT_LE(s.net.now() - start, 10s + 100ms);
        EXPECT_FALSE(s.a->agent.selectedPair());
      }
    }
  }
}

TEST(IceSim, ServerReflexiveThroughConeNats) {
  Scenario s(3, Nat::PortRestricted, Nat::AddressRestricted, config(Role::Controlling), config(Role::Controlled));
  ASSERT_TRUE(s.bothConnected(5s));
  const auto& cands = s.a->agent.localCandidates();
  ASSERT_EQ(cands.size(), 2u);
  EXPECT_EQ(cands[1].type, CandidateType::ServerReflexive);
  EXPECT_EQ(cands[1].address.ipString(), "198.51.100.1");
  EXPECT_EQ(s.a->agent.selectedPair()->remote.ipString(), "203.0.113.1");
  // The check's XOR-MAPPED-ADDRESS is the server-reflexive candidate (RFC 8445 7.2.5.3.1: a known local candidate).
  EXPECT_EQ(s.a->agent.selectedPair()->localType, CandidateType::ServerReflexive);
  EXPECT_EQ(s.a->agent.selectedPair()->local, cands[1].address);
  EXPECT_EQ(s.a->agent.selectedPair()->base, cands[0].address);
}

// ICE lite (RFC 8445 2.5) as deployed: a server with a public address, clients behind every kind of NAT (even
// symmetric, since the lite side never has to reach a mapping it has not seen a packet from), with 2 % loss. The
// full client nominates, the lite server only answers and selects what it is told.
TEST(IceSim, LiteServerWithPublicAddressAndClientsBehindNats) {
  for (Nat n : {Nat::None, Nat::FullCone, Nat::AddressRestricted, Nat::PortRestricted, Nat::Symmetric}) {
    SCOPED_TRACE(name(n));
    AgentConfig lite = config(Role::Controlling);  // a lite agent ignores the role it is given
    lite.lite = true;
    sim::LinkConfig link;
    link.loss = 0.02;
    Scenario s(11 + static_cast<std::uint64_t>(n), n, Nat::None, config(Role::Controlled), lite, link);
    ASSERT_TRUE(s.bothConnected(10s));
    EXPECT_EQ(s.a->agent.role(), Role::Controlling);  // took over through the lite side's 487
    EXPECT_EQ(s.b->agent.role(), Role::Controlled);
    EXPECT_EQ(s.b->agent.stats().checksSent, 0u);
    ASSERT_EQ(s.b->agent.localCandidates().size(), 1u);  // host only, although a STUN server was configured
    ASSERT_TRUE(s.a->sendApp("to the server"));
    ASSERT_TRUE(s.b->sendApp("to the client"));
    ASSERT_TRUE(s.net.runUntil([&] { return !s.a->received.empty() && !s.b->received.empty(); }, 2s));
    // Consent: the client's checks keep the lite side alive well past its consent timeout (30 s).
    s.net.runFor(60s);
    EXPECT_TRUE(s.a->connected());
    EXPECT_TRUE(s.b->connected());
  }
}

TEST(IceSim, PeerReflexiveThroughSymmetricNat) {
  Scenario s(5, Nat::Symmetric, Nat::FullCone, config(Role::Controlling), config(Role::Controlled));
  ASSERT_TRUE(s.bothConnected(5s));
  // b sees a's checks from a mapping a's STUN server never saw.
  EXPECT_EQ(s.b->agent.selectedPair()->remoteType, CandidateType::PeerReflexive);
}

// RFC 8445 7.2.5.3.1: a behind a symmetric NAT learns a local peer-reflexive candidate from its check's
// XOR-MAPPED-ADDRESS (the mapping the NAT made for b, not the one the STUN server saw), and the selected pair is
// the valid pair with that candidate, in either role.
TEST(IceSim, LocalPeerReflexiveBehindSymmetricNat) {
  for (Role roleA : {Role::Controlling, Role::Controlled}) {
    SCOPED_TRACE(roleA == Role::Controlling ? "a controlling" : "a controlled");
    const Role roleB = roleA == Role::Controlling ? Role::Controlled : Role::Controlling;
    Scenario s(5, Nat::Symmetric, Nat::FullCone, config(roleA), config(roleB));
    ASSERT_TRUE(s.bothConnected(5s));
    const auto pa = s.a->agent.selectedPair(), pb = s.b->agent.selectedPair();
    ASSERT_TRUE(pa && pb);
    const auto& cands = s.a->agent.localCandidates();
    ASSERT_EQ(cands.size(), 2u);
    ASSERT_EQ(cands[1].type, CandidateType::ServerReflexive);
    EXPECT_EQ(pa->localType, CandidateType::PeerReflexive);
    EXPECT_EQ(pa->local, pb->remote);  // what b sees
    EXPECT_EQ(pa->local.ipString(), "198.51.100.1");
    EXPECT_NE(pa->local, cands[1].address);  // the symmetric NAT mapped b's path to another port
    EXPECT_EQ(pa->base, addr("10.0.1.1", 5000));
    EXPECT_EQ(s.a->selected, pa);  // the event reports the same pair
    // Never signalled (nor listed as gathered).
    for (const auto& c : s.a->agent.localCandidates()) EXPECT_NE(c.type, CandidateType::PeerReflexive);

    // Data flows both ways on the pair.
    ASSERT_TRUE(s.a->sendApp("ping"));
    ASSERT_TRUE(s.net.runUntil([&] { return !s.b->received.empty(); }, 1s));
    ASSERT_TRUE(s.b->sendApp("pong"));
    ASSERT_TRUE(s.net.runUntil([&] { return !s.a->received.empty(); }, 1s));
    EXPECT_EQ(s.a->received.front(), Bytes({'p', 'o', 'n', 'g'}));
    // Consent keeps running on the valid pair.
    s.net.runFor(40s);
    EXPECT_TRUE(s.a->connected() && s.b->connected());
    EXPECT_EQ(s.a->agent.selectedPair(), pa);
  }
}

// b's host candidate plus `decoys` dead candidates that share its foundation (same type, IP and server), all
// known to a before its checks start (or trickled right after the first check went out). Returns a's checks sent
// before its first success.
std::uint64_t checksBeforeFirstSuccess(int decoys, bool decoysFirst, bool trickled, bool* connected) {
  sim::LinkConfig link;
  link.delay = 25ms;
  auto addDecoys = [&](IceEndpoint& a, IceEndpoint& b) {
    Candidate real;
    for (const auto& c : b.agent.localCandidates())
      if (c.type == CandidateType::Host) real = c;
    for (int i = 0; i < decoys; ++i) {
      Candidate d = real;
      d.address = addr("203.0.113.1", static_cast<std::uint16_t>(6000 + i));
      d.priority = decoysFirst ? real.priority + 1 + i : real.priority - 1 - i;
      EXPECT_TRUE(a.agent.addRemoteCandidate(d, a.now()));
    }
    a.flush();
  };
  Scenario s(7, Nat::None, Nat::None, config(Role::Controlling), config(Role::Controlled), link,
             trickled ? std::function<void(IceEndpoint&, IceEndpoint&)>{} : addDecoys);
  if (trickled) addDecoys(*s.a, *s.b);
  const SocketAddress la = addr("198.51.100.1", 5000), lb = addr("203.0.113.1", 5000);
  EXPECT_TRUE(s.net.runUntil([&] { return s.a->agent.isRemoteValid(la, lb); }, 5s));
  const std::uint64_t sent = s.a->agent.stats().checksSent;
  *connected = s.bothConnected(5s);
  return sent;
}

// RFC 8445 6.1.2.6 / 7.2.5.3.3: pairs sharing a foundation wait (Frozen) while its first pair is checked; before
// frozen pairs a check went out every Ta to each of them until the first response (6-7 here).
TEST(IceSim, FrozenPairsSaveChecks) {
  bool connected = false;
  EXPECT_LE(checksBeforeFirstSuccess(20, false, false, &connected), 2u);
  EXPECT_TRUE(connected);
  // Trickled pairs (RFC 8838) are Frozen behind the pair of their foundation already in progress.
  EXPECT_LE(checksBeforeFirstSuccess(20, true, true, &connected), 2u);
  EXPECT_TRUE(connected);
  // A dead pair leads the foundation: the peer's check unfreezes the live one as a triggered check (7.3.1.4).
  EXPECT_LE(checksBeforeFirstSuccess(20, true, false, &connected), 3u);
  EXPECT_TRUE(connected);
}

TEST(IceSim, ThirtyPercentLossStillConnects) {
  sim::LinkConfig lossy;
  lossy.delay = 25ms;
  lossy.loss = 0.3;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    AgentConfig ca = config(Role::Controlling), cb = config(Role::Controlled);
    ca.failureTimeout = cb.failureTimeout = 30s;
    Scenario s(seed, Nat::PortRestricted, Nat::FullCone, ca, cb, lossy);
    EXPECT_TRUE(s.bothConnected(30s)) << "seed " << seed << ": a " << toString(s.a->agent.state()) << ", b "
                                      << toString(s.b->agent.state());
  }
}

TEST(IceSim, RoleConflictsResolve) {
  for (Role r : {Role::Controlling, Role::Controlled}) {
    Scenario s(9, Nat::PortRestricted, Nat::PortRestricted, config(r), config(r));
    ASSERT_TRUE(s.bothConnected(5s));
    EXPECT_NE(s.a->agent.role(), s.b->agent.role());
    EXPECT_GE(s.a->agent.stats().roleConflicts + s.b->agent.stats().roleConflicts, 1u);
  }
}

TEST(IceSim, ConsentLossDisconnectsThenFails) {
  AgentConfig ca = config(Role::Controlling), cb = config(Role::Controlled);
  for (auto* c : {&ca, &cb}) {
    c->consentInterval = 2s;
    c->disconnectedTimeout = 5s;
    c->consentTimeout = 15s;
  }
  Scenario s(4, Nat::FullCone, Nat::PortRestricted, ca, cb);
  ASSERT_TRUE(s.bothConnected(5s));
  s.net.runFor(20s);
  ASSERT_TRUE(s.a->connected());
  sim::LinkConfig dead;
  dead.loss = 1.0;
  s.net.setDefaultLink(dead);
  const Timestamp cut = s.net.now();
  ASSERT_TRUE(s.net.runUntil([&] { return s.a->agent.state() == State::Disconnected; }, 10s));
  ASSERT_TRUE(s.net.runUntil([&] { return s.a->agent.state() == State::Failed; }, 20s));
  EXPECT_LE(s.net.now() - cut, 15s);
  EXPECT_FALSE(s.a->agent.selectedPair());
  ASSERT_GE(s.a->states.size(), 3u);
  EXPECT_EQ(s.a->states[s.a->states.size() - 2], State::Disconnected);
}

TEST(IceSim, RestartReconnects) {
  Scenario s(6, Nat::FullCone, Nat::AddressRestricted, config(Role::Controlling), config(Role::Controlled));
  ASSERT_TRUE(s.bothConnected(5s));
  const auto oldPwd = s.a->agent.localCredentials().pwd;
  s.a->agent.restart(s.net.now());
  s.b->agent.restart(s.net.now());
  s.a->flush();  // re-gathered candidates trickle again
  s.b->flush();
  s.a->sendCredentials();
  s.b->sendCredentials();
  EXPECT_NE(s.a->agent.localCredentials().pwd, oldPwd);
  s.net.runFor(2s);
  EXPECT_TRUE(s.a->connected() && s.b->connected());
  EXPECT_TRUE(s.a->agent.selectedPair());
  EXPECT_EQ(s.a->agent.stats().authFailures + s.b->agent.stats().authFailures, 0u);
  s.net.runFor(60s);  // consent now runs on the new credentials
  EXPECT_TRUE(s.a->connected() && s.b->connected());
}

TEST(IceSim, Deterministic) {
  auto run = [] {
    sim::LinkConfig l;
    l.delay = 15ms;
    l.jitter = 5ms;
    l.loss = 0.1;
    Scenario s(21, Nat::PortRestricted, Nat::AddressRestricted, config(Role::Controlling), config(Role::Controlled),
               l);
    s.net.runFor(10s);
    return s.net.traceHash();
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace rtcpeer::ice
