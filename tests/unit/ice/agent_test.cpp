#include "ice/agent.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "unit/ice/harness.hpp"
#include "stun/stun.hpp"

namespace rtcpeer::ice {
namespace {

using test::connected;
using test::Harness;

SocketAddress addr(const char* ip, std::uint16_t port) { return *SocketAddress::parse(ip, port); }

AgentConfig cfg(Role role) {
  AgentConfig c;
  c.role = role;
  return c;
}

struct Pair2 {
  Harness h;
  SeededRandom ra, rb;
  Agent a, b;
  explicit Pair2(AgentConfig ca = cfg(Role::Controlling), AgentConfig cb = cfg(Role::Controlled),
                 std::uint64_t seedA = 1, std::uint64_t seedB = 2)
      : ra(seedA), rb(seedB), a(std::move(ca), ra), b(std::move(cb), rb) {}
  void start(SocketAddress sa = addr("10.0.0.1", 5000), SocketAddress sb = addr("10.0.0.2", 6000)) {
    h.add(a, {sa});
    h.add(b, {sb});
    Harness::exchange(a, b, h.now);
    a.addRemoteEndOfCandidates(h.now);
    b.addRemoteEndOfCandidates(h.now);
    h.drainAll();
  }
  bool bothConnected(Duration limit = 5s) {
    return h.runUntil([&] { return connected(a) && connected(b); }, limit);
  }
};

bool sawState(Harness& h, Agent& a, State s) {
  auto& ev = h.events[&a];
  return std::any_of(ev.begin(), ev.end(),
                     [&](const Event& e) { return e.kind == Event::Kind::StateChanged && e.state == s; });
}

TEST(Agent, CredentialsHaveEnoughEntropy) {
  SeededRandom r(3);
  Agent a(cfg(Role::Controlling), r), b(cfg(Role::Controlling), r);
  EXPECT_GE(a.localCredentials().ufrag.size(), 8u);
  EXPECT_GE(a.localCredentials().pwd.size(), 22u);
  EXPECT_NE(a.localCredentials().ufrag, b.localCredentials().ufrag);
  EXPECT_NE(a.tieBreaker(), b.tieBreaker());
}

TEST(Agent, GathersHostCandidatesAndCompletesWithoutServers) {
  Harness h;
  SeededRandom r(1);
  Agent a(cfg(Role::Controlling), r);
  h.add(a, {addr("10.0.0.1", 5000), addr("fd00::1", 5001)});
  ASSERT_EQ(a.localCandidates().size(), 2u);
  EXPECT_EQ(a.localCandidates()[0].type, CandidateType::Host);
  EXPECT_GT(a.localCandidates()[0].priority, a.localCandidates()[1].priority);
  EXPECT_EQ(a.gatheringState(), GatheringState::Complete);
  auto& ev = h.events[&a];
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[2].kind, Event::Kind::GatheringComplete);
}

TEST(Agent, ConnectsHostToHostAndFirstCheckIsImmediate) {
  Pair2 p;
  p.start();
  // The controlling agent sent its first check in the same call that gave it the remote candidate.
  EXPECT_GE(p.a.stats().checksSent, 1u);
  const Timestamp t0 = p.h.now;
  ASSERT_TRUE(p.bothConnected());
  EXPECT_LE(p.h.now - t0, 10ms);  // a handful of 1 ms hops, no idle waits
  auto sa = p.a.selectedPair(), sb = p.b.selectedPair();
  ASSERT_TRUE(sa && sb);
  EXPECT_EQ(sa->local, sb->remote);
  EXPECT_EQ(sa->remote, sb->local);
  EXPECT_TRUE(p.a.isRemoteValid(sa->local, sa->remote));
  EXPECT_FALSE(p.a.isRemoteValid(sa->local, addr("10.9.9.9", 1)));
  p.h.runFor(100ms);
  EXPECT_EQ(p.a.state(), State::Completed);
  EXPECT_EQ(p.b.state(), State::Completed);
  EXPECT_EQ(p.a.stats().authFailures, 0u);
}

TEST(Agent, NotStunIsHandedBack) {
  Pair2 p;
  p.start();
  const std::uint8_t dtls[] = {22, 254, 253, 0, 0};
  EXPECT_FALSE(p.a.handleInput(addr("10.0.0.1", 5000), addr("10.0.0.2", 6000), dtls, p.h.now));
}

TEST(Agent, PeerReflexiveWhenOneSideHasNoCandidates) {
  // b never learns a's candidates (like an mDNS name it cannot resolve): it discovers a from a's checks.
  Pair2 p;
  p.h.add(p.a, {addr("10.0.0.1", 5000)});
  p.h.add(p.b, {addr("10.0.0.2", 6000)});
  p.b.setRemoteCredentials(p.a.localCredentials().ufrag, p.a.localCredentials().pwd, p.h.now);
  Candidate mdns = *parseCandidate("candidate:1 1 udp 2122260223 4f1a-77.local 5000 typ host");
  ASSERT_TRUE(p.b.addRemoteCandidate(mdns, p.h.now));
  p.a.setRemoteCredentials(p.b.localCredentials().ufrag, p.b.localCredentials().pwd, p.h.now);
  for (const auto& c : p.b.localCandidates()) ASSERT_TRUE(p.a.addRemoteCandidate(c, p.h.now));
  p.h.drainAll();
  ASSERT_TRUE(p.bothConnected());
  EXPECT_EQ(p.b.selectedPair()->remoteType, CandidateType::PeerReflexive);
  EXPECT_EQ(p.b.selectedPair()->remote, addr("10.0.0.1", 5000));
}

TEST(Agent, ChecksArrivingBeforeTheAnswerAreKept) {
  // a (the offerer) learns b's answer late; b's checks reach a first and are answered, remembered as
  // peer-reflexive, and turned into triggered checks once a has b's credentials.
  Pair2 p;
  p.h.add(p.a, {addr("10.0.0.1", 5000)});
  p.h.add(p.b, {addr("10.0.0.2", 6000)});
  p.b.setRemoteCredentials(p.a.localCredentials().ufrag, p.a.localCredentials().pwd, p.h.now);
  for (const auto& c : p.a.localCandidates()) ASSERT_TRUE(p.b.addRemoteCandidate(c, p.h.now));
  p.h.drainAll();
  p.h.runFor(50ms);
  EXPECT_GE(p.a.stats().checksReceived, 1u);
  EXPECT_EQ(p.a.state(), State::New);
  EXPECT_TRUE(p.a.isRemoteValid(addr("10.0.0.1", 5000), addr("10.0.0.2", 6000)));
  p.a.setRemoteCredentials(p.b.localCredentials().ufrag, p.b.localCredentials().pwd, p.h.now);
  p.h.drainAll();
  ASSERT_TRUE(p.bothConnected());
  EXPECT_EQ(p.a.selectedPair()->remoteType, CandidateType::PeerReflexive);
  for (const auto& c : p.b.localCandidates()) ASSERT_TRUE(p.a.addRemoteCandidate(c, p.h.now));
  EXPECT_EQ(p.a.selectedPair()->remoteType, CandidateType::Host);  // the signalled candidate replaces prflx
}

TEST(Agent, TcpAndOtherComponentCandidatesAreIgnored) {
  SeededRandom r(1);
  Agent a(cfg(Role::Controlling), r);
  EXPECT_TRUE(a.addRemoteCandidate(*parseCandidate("candidate:1 1 tcp 1 10.0.0.2 9 typ host tcptype active"),
                                   fromMicros(0)));
  EXPECT_TRUE(a.addRemoteCandidate(*parseCandidate("candidate:1 2 udp 1 10.0.0.2 9 typ host"), fromMicros(0)));
  EXPECT_EQ(a.nextDeadline(), kNever);
}

TEST(Agent, RoleConflictBothControlling) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    Pair2 p(cfg(Role::Controlling), cfg(Role::Controlling), seed, seed + 10);
    p.start();
    ASSERT_TRUE(p.bothConnected()) << seed;
    EXPECT_NE(p.a.role(), p.b.role());
    // The larger tie-breaker keeps controlling.
    EXPECT_EQ(p.a.role() == Role::Controlling, p.a.tieBreaker() > p.b.tieBreaker());
    EXPECT_GE(p.a.stats().roleConflicts + p.b.stats().roleConflicts, 1u);
  }
}

TEST(Agent, RoleConflictBothControlled) {
  Pair2 p(cfg(Role::Controlled), cfg(Role::Controlled));
  p.start();
  ASSERT_TRUE(p.bothConnected());
  EXPECT_NE(p.a.role(), p.b.role());
  EXPECT_EQ(p.a.role() == Role::Controlling, p.a.tieBreaker() > p.b.tieBreaker());
}

TEST(Agent, ConnectsWithThirtyPercentLoss) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    Pair2 p;
    p.h.rnd = SeededRandom(seed);
    p.h.loss = 0.3;
    p.start();
    EXPECT_TRUE(p.bothConnected(10s)) << "seed " << seed;
  }
}

TEST(Agent, FailsWithinTimeoutWhenUnreachable) {
  AgentConfig ca = cfg(Role::Controlling), cb = cfg(Role::Controlled);
  ca.failureTimeout = cb.failureTimeout = 3s;
  Pair2 p(ca, cb);
  p.h.filter = [](const test::Wire&) { return false; };
  p.h.add(p.a, {addr("10.0.0.1", 5000)});
  p.h.add(p.b, {addr("10.0.0.2", 6000)});
  Harness::exchange(p.a, p.b, p.h.now);  // no end-of-candidates: only the timeout can end it
  p.h.drainAll();
  const Timestamp t0 = p.h.now;
  ASSERT_TRUE(p.h.runUntil([&] { return p.a.state() == State::Failed && p.b.state() == State::Failed; }, 10s));
  EXPECT_LE(p.h.now - t0, 3s + 1ms);
  EXPECT_TRUE(sawState(p.h, p.a, State::Checking));
  EXPECT_FALSE(p.a.selectedPair());
}

TEST(Agent, FailsEarlyWhenAllPairsFailAfterEndOfCandidates) {
  Pair2 p;
  p.h.filter = [](const test::Wire&) { return false; };
  p.start();
  ASSERT_TRUE(p.h.runUntil([&] { return p.a.state() == State::Failed; }, 20s));
  EXPECT_LT(p.h.now - fromMicros(1'000'000), 10s);  // retransmissions exhausted (~6.3 s), not the 15 s timeout
}

// RFC 8445 6.1.2.6 / 6.1.4.2: a dead pair leads b's host foundation, so the live pair of that foundation stays
// Frozen while the dead one is checked, and is unfrozen once it failed and nothing else is Waiting. (b's checks are
// dropped, so no triggered check unfreezes it earlier.)
TEST(Agent, FrozenPairWaitsForItsFoundationLeaderToFail) {
  Pair2 p;
  const SocketAddress sa = addr("10.0.0.1", 5000), sb = addr("10.0.0.2", 6000), dead = addr("10.0.0.2", 6001);
  Timestamp firstToLive = kNever;
  int toDead = 0;
  p.h.filter = [&](const test::Wire& w) {
    if (w.from == sa && w.to == sb && firstToLive == kNever) firstToLive = w.at;
    if (w.from == sa && w.to == dead) ++toDead;
    const bool request = w.data.size() >= 2 && w.data[0] == 0x00 && w.data[1] == 0x01;  // Binding request
    return !(w.from == sb && request);
  };
  p.h.add(p.a, {sa});
  p.h.add(p.b, {sb});
  Candidate decoy = p.b.localCandidates().at(0);  // same type, IP and server: same foundation
  decoy.address = dead;
  decoy.priority += 1;
  ASSERT_TRUE(p.a.addRemoteCandidate(decoy, p.h.now));
  const Timestamp t0 = p.h.now;
  Harness::exchange(p.a, p.b, p.h.now);
  p.h.drainAll();
  ASSERT_TRUE(p.h.runUntil([&] { return p.a.isRemoteValid(sa, sb); }, 14s));
  EXPECT_EQ(toDead, 9);                   // every transmission of the leader's check...
  EXPECT_GE(firstToLive - t0, 9s);        // ...before the live pair's first check
  EXPECT_TRUE(p.h.runUntil([&] { return connected(p.a); }, 1s));
}

TEST(Agent, ConsentLossDisconnectsThenFails) {
  AgentConfig ca = cfg(Role::Controlling), cb = cfg(Role::Controlled);
  for (auto* c : {&ca, &cb}) {
    c->consentInterval = 1s;
    c->disconnectedTimeout = 3s;
    c->consentTimeout = 6s;
  }
  Pair2 p(ca, cb);
  p.start();
  ASSERT_TRUE(p.bothConnected());
  p.h.runFor(10s);  // consent keeps it alive
  EXPECT_TRUE(connected(p.a));
  EXPECT_GT(p.a.stats().checksSent, 5u);
  bool cut = true;
  p.h.filter = [&](const test::Wire&) { return !cut; };
  const Timestamp t0 = p.h.now;
  ASSERT_TRUE(p.h.runUntil([&] { return p.a.state() == State::Disconnected; }, 5s));
  EXPECT_GE(p.h.now - t0, 1s);
  ASSERT_TRUE(p.h.runUntil([&] { return p.a.state() == State::Failed; }, 10s));
  EXPECT_LE(p.h.now - t0, 6s + 10ms);
  EXPECT_FALSE(p.a.selectedPair());
  auto& ev = p.h.events[&p.a];
  EXPECT_EQ(ev.back().kind, Event::Kind::SelectedPairChanged);
  EXPECT_FALSE(ev.back().selected);
  p.h.runFor(60s);  // failed is final until restart()
  EXPECT_EQ(p.a.state(), State::Failed);
}

TEST(Agent, DisconnectedRecoversWhenTrafficResumes) {
  AgentConfig ca = cfg(Role::Controlling), cb = cfg(Role::Controlled);
  for (auto* c : {&ca, &cb}) {
    c->consentInterval = 1s;
    c->disconnectedTimeout = 2500ms;
  }
  Pair2 p(ca, cb);
  p.start();
  ASSERT_TRUE(p.bothConnected());
  bool cut = true;
  p.h.filter = [&](const test::Wire&) { return !cut; };
  ASSERT_TRUE(p.h.runUntil([&] { return p.a.state() == State::Disconnected; }, 5s));
  cut = false;
  ASSERT_TRUE(p.h.runUntil([&] { return connected(p.a); }, 5s));
}

TEST(Agent, RestartReconnectsWithNewCredentials) {
  Pair2 p;
  p.start();
  ASSERT_TRUE(p.bothConnected());
  const auto oldUfrag = p.a.localCredentials().ufrag;
  const auto before = p.a.selectedPair();
  p.a.restart(p.h.now);
  p.b.restart(p.h.now);
  EXPECT_NE(p.a.localCredentials().ufrag, oldUfrag);
  EXPECT_TRUE(p.a.selectedPair());  // keeps working during the restart
  Harness::exchange(p.a, p.b, p.h.now);
  p.h.drainAll();
  const auto sentBefore = p.b.stats().checksReceived;
  p.h.runFor(200ms);
  EXPECT_GT(p.b.stats().checksReceived, sentBefore);
  EXPECT_TRUE(connected(p.a) && connected(p.b));
  EXPECT_EQ(p.a.selectedPair(), before);
  // The old credentials no longer authenticate once the new generation selected its pair.
  EXPECT_EQ(p.a.stats().authFailures, 0u);
}

TEST(Agent, RestartRecoversFromFailed) {
  AgentConfig ca = cfg(Role::Controlling), cb = cfg(Role::Controlled);
  ca.failureTimeout = cb.failureTimeout = 2s;
  Pair2 p(ca, cb);
  bool cut = true;
  p.h.filter = [&](const test::Wire&) { return !cut; };
  p.start();
  ASSERT_TRUE(p.h.runUntil([&] { return p.a.state() == State::Failed && p.b.state() == State::Failed; }, 20s));
  cut = false;
  p.a.restart(p.h.now);
  p.b.restart(p.h.now);
  EXPECT_EQ(p.a.state(), State::New);
  Harness::exchange(p.a, p.b, p.h.now);
  p.h.drainAll();
  ASSERT_TRUE(p.bothConnected());
}

// ---- authentication --------------------------------------------------------------------------------------------

Bytes forgedCheck(const std::string& username, const std::string& key, bool useCandidate, std::uint64_t tie,
                  bool controlling) {
  Bytes out;
  SeededRandom r(99);
  stun::MessageBuilder b(out, stun::Method::Binding, stun::Class::Request, stun::randomTransactionId(r));
  b.addString(stun::attr::Username, username).addU32(stun::attr::Priority, 1845501695);
  b.addU64(controlling ? stun::attr::IceControlling : stun::attr::IceControlled, tie);
  if (useCandidate) b.addFlag(stun::attr::UseCandidate);
  b.addIntegrity(stun::shortTermKey(key)).addFingerprint();
  return out;
}

TEST(Agent, UnauthenticatedChecksNeverSelectOrBreakPairs) {
  Pair2 p;
  p.start();
  ASSERT_TRUE(p.bothConnected());
  const auto selected = p.b.selectedPair();
  const auto& bl = p.b.localCredentials();
  const auto& al = p.a.localCredentials();
  const SocketAddress attacker = addr("10.6.6.6", 666);
  const SocketAddress bSock = addr("10.0.0.2", 6000);
  // Wrong password, wrong ufrag, and no integrity at all; each with USE-CANDIDATE and a role-conflict bait.
  const Bytes bad[] = {
      forgedCheck(bl.ufrag + ":" + al.ufrag, "not-the-password-xxxxxxx", true, ~0ull, false),
      forgedCheck("wrong:" + al.ufrag, bl.pwd, true, ~0ull, false),
  };
  for (const auto& m : bad) {
    ASSERT_TRUE(p.b.handleInput(bSock, attacker, m, p.h.now));
    auto t = p.b.pollTransmit();
    ASSERT_TRUE(t);  // answered per RFC 8489 9.1.3 ...
    auto reply = stun::parse(t->data);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->errorCode()->code, stun::error::Unauthorized);  // ... with a 401
    EXPECT_FALSE(p.b.pollTransmit());
  }
  Bytes noIntegrity;
  SeededRandom r(5);
  stun::MessageBuilder(noIntegrity, stun::Method::Binding, stun::Class::Request, stun::randomTransactionId(r))
      .addString(stun::attr::Username, bl.ufrag + ":" + al.ufrag)
      .addFlag(stun::attr::UseCandidate)
      .addFingerprint();
  ASSERT_TRUE(p.b.handleInput(bSock, attacker, noIntegrity, p.h.now));
  auto t = p.b.pollTransmit();
  ASSERT_TRUE(t);
  EXPECT_EQ(stun::parse(t->data)->errorCode()->code, stun::error::BadRequest);

  EXPECT_EQ(p.b.stats().authFailures, 2u);
  EXPECT_EQ(p.b.role(), Role::Controlled);
  EXPECT_EQ(p.b.selectedPair(), selected);
  EXPECT_FALSE(p.b.isRemoteValid(bSock, attacker));
  EXPECT_FALSE(p.b.pollEvent());
}

TEST(Agent, ForgedResponsesAreIgnored) {
  // b is unreachable; an attacker answers a's checks with responses signed by the wrong key.
  Pair2 p;
  std::vector<test::Wire> captured;
  p.h.filter = [&](const test::Wire& w) {
    if (w.from == addr("10.0.0.1", 5000)) captured.push_back(w);
    return false;
  };
  p.start();
  p.h.runFor(50ms);
  ASSERT_FALSE(captured.empty());
  for (const auto& w : captured) {
    auto req = stun::parse(w.data);
    ASSERT_TRUE(req);
    Bytes resp;
    stun::MessageBuilder(resp, stun::Method::Binding, stun::Class::SuccessResponse, req->transactionId())
        .addXorAddress(stun::attr::XorMappedAddress, w.from)
        .addIntegrity(stun::shortTermKey("forged-password-forged-pw"))
        .addFingerprint();
    p.a.handleInput(w.from, w.to, resp, p.h.now);
    Bytes unsigned401;
    stun::MessageBuilder(unsigned401, stun::Method::Binding, stun::Class::ErrorResponse, req->transactionId())
        .addErrorCode(401, "Unauthorized")
        .addFingerprint();
    p.a.handleInput(w.from, w.to, unsigned401, p.h.now);
  }
  EXPECT_EQ(p.a.stats().authFailures, 2 * captured.size());
  EXPECT_FALSE(p.a.selectedPair());
  EXPECT_EQ(p.a.state(), State::Checking);
  EXPECT_FALSE(p.a.isRemoteValid(addr("10.0.0.1", 5000), addr("10.0.0.2", 6000)));
}

// ---- server-reflexive gathering against a fake STUN server -------------------------------------------------------

TEST(Agent, GathersServerReflexiveAndTimesOutOnDeadServer) {
  Harness h;
  const SocketAddress live = addr("198.51.100.1", 3478), dead = addr("198.51.100.2", 3478);
  const SocketAddress mapped = addr("203.0.113.5", 40000);
  int queries = 0, deadQueries = 0;
  h.unowned = [&](const test::Wire& w) {
    if (w.to == dead) {
      ++deadQueries;
      return;
    }
    ++queries;
    auto req = stun::parse(w.data);
    ASSERT_TRUE(req);
    Bytes resp;
    stun::MessageBuilder(resp, stun::Method::Binding, stun::Class::SuccessResponse, req->transactionId())
        .addXorAddress(stun::attr::XorMappedAddress, mapped);
    h.inject(w.to, w.from, resp);
  };
  AgentConfig c = cfg(Role::Controlling);
  c.stunServers = {live, dead};
  c.gatheringTimeout = 2s;
  SeededRandom r(1);
  Agent a(c, r);
  h.add(a, {addr("10.0.0.1", 5000)});
  EXPECT_EQ(a.gatheringState(), GatheringState::Gathering);
  ASSERT_TRUE(h.runUntil([&] { return a.localCandidates().size() == 2; }, 1s));
  const auto& srflx = a.localCandidates()[1];
  EXPECT_EQ(srflx.type, CandidateType::ServerReflexive);
  EXPECT_EQ(srflx.address, mapped);
  EXPECT_EQ(srflx.related, addr("10.0.0.1", 5000));
  EXPECT_EQ(a.gatheringState(), GatheringState::Gathering);  // the dead server is still being retried
  ASSERT_TRUE(h.runUntil([&] { return a.gatheringState() == GatheringState::Complete; }, 3s));
  EXPECT_LE(h.now - fromMicros(1'000'000), 2s + 1ms);
  EXPECT_EQ(queries, 1);
  EXPECT_GE(deadQueries, 3);  // retransmitted per RFC 8489 before giving up
  ASSERT_EQ(a.serverReflexiveResults().size(), 2u);
  EXPECT_FALSE(a.serverReflexiveResults()[1].mapped);
}

// ---- ICE lite (RFC 8445 2.5) ------------------------------------------------------------------------------

AgentConfig lite() {
  AgentConfig c = cfg(Role::Controlling);  // whatever it is told, a lite agent is controlled (6.1.1)
  c.lite = true;
  c.stunServers = {addr("198.51.100.1", 3478)};  // and it gathers host candidates only
  return c;
}

void expectLiteConnects(Pair2& p, Agent& full, Agent& liteAgent) {
  EXPECT_EQ(liteAgent.role(), Role::Controlled);
  EXPECT_EQ(liteAgent.gatheringState(), GatheringState::Complete);
  ASSERT_EQ(liteAgent.localCandidates().size(), 1u);
  EXPECT_EQ(liteAgent.localCandidates()[0].type, CandidateType::Host);
  ASSERT_TRUE(p.bothConnected());
  auto sf = full.selectedPair(), sl = liteAgent.selectedPair();
  ASSERT_TRUE(sf && sl);
  EXPECT_EQ(sf->local, sl->remote);
  EXPECT_EQ(sf->remote, sl->local);
  // The lite side never sent a request of its own: every check was the full side's.
  EXPECT_EQ(liteAgent.stats().checksSent, 0u);
  EXPECT_GE(full.stats().checksSent, 2u);  // a check and the nomination
  EXPECT_EQ(liteAgent.nextDeadline() > p.h.now + 1s, true);  // no pacing timer left running on the lite side
}

TEST(Agent, FullControllingNominatesForLitePeer) {
  Pair2 p(cfg(Role::Controlling), lite());
  p.start();
  expectLiteConnects(p, p.a, p.b);
}

TEST(Agent, FullAgentTakesControlFromLitePeerThatClaimsIt) {
  // The full agent was created controlled (e.g. it answered an offer before seeing a=ice-lite): the lite agent
  // answers its ICE-CONTROLLED checks with 487, the full agent becomes controlling and nominates.
  Pair2 p(lite(), cfg(Role::Controlled));
  p.start();
  expectLiteConnects(p, p.b, p.a);
  EXPECT_EQ(p.b.role(), Role::Controlling);
  EXPECT_GE(p.a.stats().roleConflicts, 1u);
}

TEST(Agent, LiteKeepsConsentFromThePeersChecks) {
  AgentConfig full = cfg(Role::Controlling);
  full.consentInterval = 1s;
  full.disconnectedTimeout = 3s;
  AgentConfig l = lite();
  l.disconnectedTimeout = 3s;
  l.consentTimeout = 6s;
  Pair2 p(full, l);
  p.start();
  ASSERT_TRUE(p.bothConnected());
  p.h.runFor(20s);  // well past the lite side's consent timeout: the full side's consent checks keep it
  EXPECT_TRUE(connected(p.a));
  EXPECT_TRUE(connected(p.b));
  EXPECT_EQ(p.b.stats().checksSent, 0u);
  // The full side goes away: the lite side notices from the missing checks.
  p.h.filter = [&](const test::Wire& w) { return w.to != p.b.localCandidates()[0].address; };
  ASSERT_TRUE(p.h.runUntil([&] { return p.b.state() == State::Failed; }, 10s));
  EXPECT_TRUE(sawState(p.h, p.b, State::Disconnected));
}

// ---- servers given by name, resolved by the shell ---------------------------------------------------------

TEST(Agent, ResolvedStunServerIsQueriedAndGatheringWaitsForIt) {
  Harness h;
  const SocketAddress server = addr("198.51.100.1", 3478), mapped = addr("203.0.113.5", 40000);
  h.unowned = [&](const test::Wire& w) {
    auto req = stun::parse(w.data);
    ASSERT_TRUE(req);
    Bytes resp;
    stun::MessageBuilder(resp, stun::Method::Binding, stun::Class::SuccessResponse, req->transactionId())
        .addXorAddress(stun::attr::XorMappedAddress, mapped);
    h.inject(w.to, w.from, resp);
  };
  AgentConfig c = cfg(Role::Controlling);
  c.pendingNames = 2;
  SeededRandom r(1);
  Agent a(c, r);
  h.add(a, {addr("10.0.0.1", 5000)});
  h.runFor(50ms);
  EXPECT_EQ(a.gatheringState(), GatheringState::Gathering);  // two names are still being resolved
  a.handleResolved({"stun:stun.example.org", {server}, {}, {}}, h.now);
  h.drain(a);
  ASSERT_TRUE(h.runUntil([&] { return a.localCandidates().size() == 2; }, 1s));
  EXPECT_EQ(a.localCandidates()[1].type, CandidateType::ServerReflexive);
  EXPECT_EQ(a.gatheringState(), GatheringState::Gathering);
  a.handleResolved({"stun:nothing.invalid", {}, {}, "cannot resolve 'nothing.invalid': Domain name not found"},
                   h.now);
  h.drain(a);
  EXPECT_EQ(a.gatheringState(), GatheringState::Complete);
}

TEST(Agent, RelayOnlyWithUnresolvableTurnNameFailsWithTheReason) {
  Harness h;
  AgentConfig c = cfg(Role::Controlling);
  c.relayOnly = true;
  c.pendingNames = 1;
  SeededRandom r(1);
  Agent a(c, r);
  h.add(a, {addr("10.0.0.1", 5000)});
  a.setRemoteCredentials("remoteufrag", "remotepasswordremotepassword", h.now);
  EXPECT_EQ(a.state(), State::New);
  a.handleResolved({"turn:turn.invalid", {}, {}, "cannot resolve 'turn.invalid': Domain name not found"}, h.now);
  h.drain(a);
  EXPECT_EQ(a.state(), State::Failed);
  EXPECT_NE(a.failureReason().find("turn:turn.invalid: cannot resolve 'turn.invalid': Domain name not found"),
            std::string::npos)
      << a.failureReason();
}

TEST(Agent, CloseStopsEverything) {
  Pair2 p;
  p.start();
  ASSERT_TRUE(p.bothConnected());
  p.a.close();
  EXPECT_EQ(p.a.state(), State::Closed);
  EXPECT_FALSE(p.a.selectedPair());
  EXPECT_EQ(p.a.nextDeadline(), kNever);
}

}  // namespace
}  // namespace rtcpeer::ice
