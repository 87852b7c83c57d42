// TURN in the ICE agent on virtual time against a fake TURN server: relay-only connectivity, refreshes of the
// allocation, permissions and channel bindings over many minutes, ChannelData, stale nonces, failures
// (wrong password, 486 quota, unreachable server), deallocation, IPv6 relays (REQUESTED-ADDRESS-FAMILY); and the
// TurnClient's stream framing and address-family encoding.
#include <gtest/gtest.h>

#include "unit/ice/fake_turn.hpp"

namespace rtcpeer::ice {
namespace {

using test::FakeTurn;
using test::Harness;

SocketAddress addr(const char* ip, std::uint16_t port) { return *SocketAddress::parse(ip, port); }

const SocketAddress kServer = addr("192.0.2.100", 3478);
const SocketAddress kHostA = addr("192.0.2.1", 5000);
const SocketAddress kHostB = addr("198.51.100.1", 6000);

AgentConfig relayConfig(Role role, const FakeTurn& server, std::string password = {}) {
  AgentConfig c;
  c.role = role;
  c.relayOnly = true;
  c.turnServers = {{server.address(), TurnTransport::Udp, server.user, password.empty() ? server.password : password}};
  return c;
}

struct RelayPair {
  explicit RelayPair(SocketAddress serverAddress = kServer, SocketAddress addressA = kHostA,
                     SocketAddress addressB = kHostB)
      : server(h, serverAddress), hostA(addressA), hostB(addressB) {}

  Harness h;
  FakeTurn server;
  SocketAddress hostA, hostB;
  std::unique_ptr<Agent> a, b;
  std::map<Agent*, std::vector<Bytes>> received;

  void start(AgentConfig ca, AgentConfig cb) {
    h.unowned = [this](const test::Wire& w) { server.onWire(w); };
    h.onApp = [this](Agent& agent, const AppDatagram& d) {
      received[&agent].emplace_back(d.data.begin(), d.data.end());
    };
    a = std::make_unique<Agent>(std::move(ca), h.rnd);
    b = std::make_unique<Agent>(std::move(cb), h.rnd);
    h.add(*a, {hostA});
    h.add(*b, {hostB});
  }
  bool gathered() const {
    return a->gatheringState() == GatheringState::Complete && b->gatheringState() == GatheringState::Complete;
  }
  /// Sends one application datagram on the selected pair, as the PeerConnection does.
  void sendApp(Agent& from, ByteView payload) {
    auto w = from.wrapForSelectedPair(payload, h.now);
    if (w) h.inject(w->local, w->remote, w->data);
    h.drainAll();
  }
};

Bytes payload(std::uint8_t first, std::size_t n) {
  Bytes b(n, 0xAB);
  b[0] = first;  // 23: looks like DTLS application data (RFC 7983), never STUN or ChannelData
  return b;
}

TEST(Turn, RelayOnlyPeersConnectThroughTheServer) {
  RelayPair p;
  p.start(relayConfig(Role::Controlling, p.server), relayConfig(Role::Controlled, p.server));
  ASSERT_TRUE(p.h.runUntil([&] { return p.gathered(); }, 5s));
  for (Agent* x : {p.a.get(), p.b.get()}) {
    ASSERT_EQ(x->localCandidates().size(), 1u) << "relay-only gathers exactly the relay candidate";
    const auto& c = x->localCandidates()[0];
    EXPECT_EQ(c.type, CandidateType::Relay);
    EXPECT_EQ(c.address.ipString(), "10.99.0.1");
    EXPECT_TRUE(c.related.valid());
    EXPECT_NE(c.toSdp().find("typ relay raddr "), std::string::npos) << c.toSdp();
    EXPECT_TRUE(x->relayResults()[0].error.empty());
  }
  EXPECT_EQ(p.a->localCandidates()[0].related, kHostA);  // raddr/rport: the mapped address
  EXPECT_EQ(p.server.count.familyRequests, 0) << "IPv4 is the default: no REQUESTED-ADDRESS-FAMILY";
  Harness::exchange(*p.a, *p.b, p.h.now);
  p.h.drainAll();
  ASSERT_TRUE(p.h.runUntil([&] { return test::connected(*p.a) && test::connected(*p.b); }, 10s));
  auto sa = p.a->selectedPair();
  ASSERT_TRUE(sa);
  EXPECT_EQ(sa->localType, CandidateType::Relay);
  EXPECT_EQ(sa->remoteType, CandidateType::Relay);
  EXPECT_EQ(sa->local, p.a->localCandidates()[0].address);
  EXPECT_GE(p.server.count.sendIndications, 2);  // checks before the channel exists
  EXPECT_GE(p.server.count.dataIndications, 2);

  // The selected pair gets a channel, and application data then flows as ChannelData both ways.
  p.h.runFor(1s);
  EXPECT_EQ(p.server.count.channelBinds, 2);
  const Bytes hello = payload(23, 100);
  p.sendApp(*p.a, hello);
  p.sendApp(*p.b, hello);
  p.h.runFor(100ms);
  ASSERT_EQ(p.received[p.b.get()].size(), 1u);
  ASSERT_EQ(p.received[p.a.get()].size(), 1u);
  EXPECT_EQ(p.received[p.b.get()][0], hello);
  EXPECT_EQ(p.server.count.channelDataIn, 2);
  EXPECT_EQ(p.server.count.channelDataOut, 2);
  auto rb = p.received[p.b.get()];
  EXPECT_TRUE(p.b->isRemoteValid(p.b->localCandidates()[0].address, p.a->localCandidates()[0].address));
}

TEST(Turn, AllocationPermissionsAndChannelsAreRefreshedOverThirtyMinutes) {
  RelayPair p;
  p.server.maxLifetime = 300;  // the server grants 5 minutes only: the client must follow what was granted
  p.start(relayConfig(Role::Controlling, p.server), relayConfig(Role::Controlled, p.server));
  ASSERT_TRUE(p.h.runUntil([&] { return p.gathered(); }, 5s));
  Harness::exchange(*p.a, *p.b, p.h.now);
  p.h.drainAll();
  ASSERT_TRUE(p.h.runUntil([&] { return test::connected(*p.a) && test::connected(*p.b); }, 10s));
  p.h.runFor(1s);
  const Bytes data = payload(23, 200);
  int sent = 0;
  for (int second = 0; second < 30 * 60; ++second) {
    p.sendApp(*p.a, data);
    p.sendApp(*p.b, data);
    ++sent;
    p.h.runFor(1s);
    ASSERT_TRUE(test::connected(*p.a) && test::connected(*p.b)) << "at second " << second;
  }
  // Every datagram arrived: nothing hit an expired allocation, permission or channel.
  EXPECT_EQ(p.server.count.expiredDrops, 0);
  EXPECT_EQ(static_cast<int>(p.received[p.a.get()].size()), sent);
  EXPECT_EQ(static_cast<int>(p.received[p.b.get()].size()), sent);
  // 30 min at 3/4 of 300 s: 8 refreshes per allocation; channels (10 min) every 8 min: 3 re-binds + the bind;
  // permissions (5 min) every 4 min, except that each re-bind also refreshes the permission (RFC 8656 12), which
  // pushes the next CreatePermission back. Consent checks kept going through the channel.
  EXPECT_GE(p.server.count.refreshes, 2 * 7);
  EXPECT_GE(p.server.count.channelBinds, 2 * 4);
  EXPECT_GE(p.server.count.permissions, 2 * 5);
  EXPECT_EQ(p.server.count.allocates, 2);
  EXPECT_GT(p.server.count.channelDataIn, 2 * sent);
  for (const auto& alloc : p.server.allocations) EXPECT_GT(alloc.expires, p.h.now);
}

TEST(Turn, StaleNonceIsRefreshedAndRetried) {
  RelayPair p;
  p.start(relayConfig(Role::Controlling, p.server), relayConfig(Role::Controlled, p.server));
  ASSERT_TRUE(p.h.runUntil([&] { return p.gathered(); }, 5s));
  Harness::exchange(*p.a, *p.b, p.h.now);
  p.h.drainAll();
  ASSERT_TRUE(p.h.runUntil([&] { return test::connected(*p.a) && test::connected(*p.b); }, 10s));
  p.server.nonce = "nonce-2";  // every following request first gets 438
  p.h.runFor(20min);
  EXPECT_GE(p.server.count.staleNonces, 2);
  EXPECT_GE(p.server.count.refreshes, 2);
  EXPECT_EQ(p.server.count.expiredDrops, 0);
  EXPECT_TRUE(test::connected(*p.a) && test::connected(*p.b));
  EXPECT_TRUE(p.a->relayResults()[0].error.empty());
}

void expectGatheringFailure(FakeTurn& server, RelayPair& p, std::string password, const std::string& reason) {
  p.start(relayConfig(Role::Controlling, server, std::move(password)),
          relayConfig(Role::Controlled, server, "x"));
  ASSERT_TRUE(p.h.runUntil([&] { return p.gathered(); }, 60s)) << "gathering must complete";
  EXPECT_TRUE(p.a->localCandidates().empty());
  const auto r = p.a->relayResults();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].relayed);
  EXPECT_NE(r[0].error.find(reason), std::string::npos) << r[0].error;
  // Relay-only with no allocation can never connect: the agent fails at once, saying why.
  EXPECT_EQ(p.a->state(), State::Failed);
  EXPECT_NE(p.a->failureReason().find(reason), std::string::npos) << p.a->failureReason();
}

TEST(Turn, WrongPasswordFailsWithAReasonAndGatheringCompletes) {
  RelayPair p;
  expectGatheringFailure(p.server, p, "wrong", "rejected the username/credential (401");
}

TEST(Turn, QuotaReachedFailsWithAReason) {
  RelayPair p;
  p.server.quotaReached = true;
  expectGatheringFailure(p.server, p, {}, "allocation quota reached (486");
}

TEST(Turn, UnreachableServerFailsWithAReason) {
  RelayPair p;
  p.server.silent = true;
  const Timestamp start = p.h.now;
  expectGatheringFailure(p.server, p, {}, "no answer to Allocate");
  EXPECT_LT(p.h.now - start, 40s);  // 7 transmissions from 250 ms doubling: ~32 s
}

TEST(Turn, CloseDeallocates) {
  RelayPair p;
  p.start(relayConfig(Role::Controlling, p.server), relayConfig(Role::Controlled, p.server));
  ASSERT_TRUE(p.h.runUntil([&] { return p.gathered(); }, 5s));
  p.a->close();
  p.h.drainAll();
  p.h.runFor(1s);
  EXPECT_EQ(p.server.count.deallocations, 1);
  EXPECT_LE(p.server.allocationOf(kHostA)->expires, p.h.now);
}

TEST(Turn, RelayCandidatePairsWithAHostPeerWithoutRelayOnly) {
  RelayPair p;
  AgentConfig ca = relayConfig(Role::Controlling, p.server);
  AgentConfig cb;
  cb.role = Role::Controlled;
  // B's host address is unreachable directly (as behind a firewall): only A's relay can reach it.
  p.h.filter = [](const test::Wire& w) {
    return !((w.from == kHostA && w.to == kHostB) || (w.from == kHostB && w.to == kHostA));
  };
  ca.relayOnly = false;
  p.start(std::move(ca), std::move(cb));
  ASSERT_TRUE(p.h.runUntil([&] { return p.gathered(); }, 5s));
  ASSERT_EQ(p.a->localCandidates().size(), 2u);  // host + relay
  Harness::exchange(*p.a, *p.b, p.h.now);
  p.h.drainAll();
  ASSERT_TRUE(p.h.runUntil([&] { return test::connected(*p.a) && test::connected(*p.b); }, 20s));
  EXPECT_EQ(p.a->selectedPair()->localType, CandidateType::Relay);
  EXPECT_EQ(p.b->selectedPair()->remote.ipString(), "10.99.0.1");
}

TEST(Turn, SameServerAnswersStunAndTurn) {
  // One address for stun: and turn: (the usual deployment): Binding responses still reach srflx gathering.
  RelayPair p;
  AgentConfig ca = relayConfig(Role::Controlling, p.server);
  ca.relayOnly = false;
  ca.stunServers = {kServer};
  p.h.unowned = [&](const test::Wire& w) {
    auto m = stun::parse(w.data);
    if (w.to == kServer && m && m->is(stun::Method::Binding, stun::Class::Request)) {
      Bytes out;
      stun::MessageBuilder(out, stun::Method::Binding, stun::Class::SuccessResponse, m->transactionId())
          .addXorAddress(stun::attr::XorMappedAddress, addr("203.0.113.9", 7000));
      p.h.inject(kServer, w.from, out);
      return;
    }
    p.server.onWire(w);
  };
  p.a = std::make_unique<Agent>(std::move(ca), p.h.rnd);
  p.h.add(*p.a, {kHostA});
  ASSERT_TRUE(p.h.runUntil([&] { return p.a->gatheringState() == GatheringState::Complete; }, 5s));
  std::vector<CandidateType> types;
  for (const auto& c : p.a->localCandidates()) types.push_back(c.type);
  EXPECT_EQ(types, (std::vector{CandidateType::Host, CandidateType::ServerReflexive, CandidateType::Relay}));
}

TEST(Turn, Ipv6ServerGivesIpv6RelaysAndPeersConnect) {
  RelayPair p(addr("2001:db8::100", 3478), addr("2001:db8::1", 5000), addr("2001:db8:1::1", 6000));
  p.start(relayConfig(Role::Controlling, p.server), relayConfig(Role::Controlled, p.server));
  ASSERT_TRUE(p.h.runUntil([&] { return p.gathered(); }, 5s));
  EXPECT_EQ(p.server.count.familyRequests, 2);
  for (Agent* x : {p.a.get(), p.b.get()}) {
    ASSERT_EQ(x->localCandidates().size(), 1u) << (x->relayResults().empty() ? "" : x->relayResults()[0].error);
    const auto& c = x->localCandidates()[0];
    EXPECT_EQ(c.type, CandidateType::Relay);
    EXPECT_EQ(c.address.ipString(), "fd99::1");
  }
  EXPECT_NE(p.a->localCandidates()[0].toSdp().find(" fd99::1 50001 typ relay raddr 2001:db8::1 rport 5000"),
            std::string::npos)
      << p.a->localCandidates()[0].toSdp();
  Harness::exchange(*p.a, *p.b, p.h.now);
  p.h.drainAll();
  ASSERT_TRUE(p.h.runUntil([&] { return test::connected(*p.a) && test::connected(*p.b); }, 10s));
  EXPECT_EQ(p.a->selectedPair()->local.ipString(), "fd99::1");
  EXPECT_EQ(p.a->selectedPair()->remote.ipString(), "fd99::1");
  // Permissions and channels carry IPv6 XOR-PEER-ADDRESSes the server accepts (no 443).
  p.h.runFor(1s);
  EXPECT_EQ(p.server.count.channelBinds, 2);
  EXPECT_EQ(p.server.count.familyMismatches, 0);
  const Bytes hello = payload(23, 300);
  p.sendApp(*p.a, hello);
  p.sendApp(*p.b, hello);
  p.h.runFor(100ms);
  ASSERT_EQ(p.received[p.a.get()].size(), 1u);
  ASSERT_EQ(p.received[p.b.get()].size(), 1u);
  EXPECT_EQ(p.received[p.b.get()][0], hello);
  EXPECT_EQ(p.server.count.channelDataIn, 2);
}

TEST(Turn, ServerWithoutIpv6FailsWithAReason) {
  RelayPair p(addr("2001:db8::100", 3478), addr("2001:db8::1", 5000), addr("2001:db8:1::1", 6000));
  p.server.ipv6 = false;
  expectGatheringFailure(p.server, p, {}, "cannot relay IPv6 (440");
}

// ---- TurnClient: the address family on the wire ----------------------------------------------------------------

struct FamilyClient {
  explicit FamilyClient(SocketAddress::Family family) : client(configFor(family), rnd) {}
  static TurnClientConfig configFor(SocketAddress::Family family) {
    TurnClientConfig c;
    c.server = {addr("2001:db8::100", 3478), TurnTransport::Udp, "user", "secret"};
    c.relayFamily = family;
    return c;
  }
  /// Starts, answers the first Allocate with a 401 challenge and returns the authenticated retry.
  stun::TransactionId allocate(Bytes& request) {
    client.start(t0);
    auto first = client.pollTransmit();
    if (!first) return {};
    auto m = stun::parse(*first);
    if (!m) return {};
    if (auto family = m->find(stun::attr::RequestedAddressFamily)) familyBytes.assign(family->begin(), family->end());
    Bytes challenge;
    stun::MessageBuilder(challenge, stun::Method::Allocate, stun::Class::ErrorResponse, m->transactionId())
        .addErrorCode(401, "Unauthorized")
        .addString(stun::attr::Realm, "r")
        .addString(stun::attr::Nonce, "n");
    client.handleMessage(challenge, t0);
    request = client.pollTransmit().value_or(Bytes{});
    auto retry = stun::parse(request);
    return retry ? retry->transactionId() : stun::TransactionId{};
  }
  void succeed(const stun::TransactionId& id, const SocketAddress& relayed) {
    Bytes ok;
    stun::MessageBuilder(ok, stun::Method::Allocate, stun::Class::SuccessResponse, id)
        .addXorAddress(stun::attr::XorRelayedAddress, relayed)
        .addXorAddress(stun::attr::XorMappedAddress, addr("2001:db8::1", 5000))
        .addU32(stun::attr::Lifetime, 600)
        .addIntegrity(stun::longTermKey("user", "r", "secret"))
        .addFingerprint();
    client.handleMessage(ok, t0);
  }

  const Timestamp t0 = fromMicros(1'000'000);
  SeededRandom rnd{5};
  TurnClient client;
  Bytes familyBytes;  // REQUESTED-ADDRESS-FAMILY of the first Allocate, empty if absent
};

TEST(TurnClient, Ipv6AllocationCarriesRequestedAddressFamily) {
  FamilyClient f(SocketAddress::Family::V6);
  Bytes retry;
  const auto id = f.allocate(retry);
  // RFC 8656 18.1: type 0x0017, length 4, family 0x02 (IPv6) and three RFFU zero bytes.
  EXPECT_EQ(f.familyBytes, (Bytes{0x02, 0, 0, 0}));
  auto m = stun::parse(retry);
  ASSERT_TRUE(m);
  auto again = m->find(stun::attr::RequestedAddressFamily);
  ASSERT_TRUE(again) << "the authenticated retry asks for IPv6 too";
  EXPECT_EQ(Bytes(again->begin(), again->end()), (Bytes{0x02, 0, 0, 0}));
  // XOR-RELAYED-ADDRESS of family IPv6: XORed with the magic cookie and the transaction id (RFC 8489 14.2).
  f.succeed(id, addr("2001:db8:ffff::42", 49152));
  ASSERT_EQ(f.client.state(), TurnClient::State::Allocated) << f.client.failureReason();
  EXPECT_EQ(f.client.relayedAddress(), addr("2001:db8:ffff::42", 49152));
  EXPECT_EQ(f.client.mappedAddress(), addr("2001:db8::1", 5000));
  // Permissions for IPv6 peers go out with an IPv6 XOR-PEER-ADDRESS.
  f.client.addPermission(addr("2001:db8:2::7", 9), f.t0);
  auto perm = f.client.pollTransmit();
  ASSERT_TRUE(perm);
  auto pm = stun::parse(*perm);
  ASSERT_TRUE(pm);
  EXPECT_EQ(pm->xorPeerAddress(), addr("2001:db8:2::7", 0));
}

TEST(TurnClient, Ipv4AllocationOmitsRequestedAddressFamily) {
  FamilyClient f(SocketAddress::Family::V4);
  Bytes retry;
  const auto id = f.allocate(retry);
  EXPECT_TRUE(f.familyBytes.empty());
  f.succeed(id, addr("192.0.2.50", 50000));
  EXPECT_EQ(f.client.state(), TurnClient::State::Allocated);
}

TEST(TurnClient, RelayedAddressOfTheOtherFamilyFails) {
  FamilyClient f(SocketAddress::Family::V6);
  Bytes retry;
  f.succeed(f.allocate(retry), addr("192.0.2.50", 50000));
  EXPECT_EQ(f.client.state(), TurnClient::State::Failed);
  EXPECT_NE(f.client.failureReason().find("asked for an IPv6 relayed address, got 192.0.2.50:50000"),
            std::string::npos)
      << f.client.failureReason();
}

// ---- TurnClient over a stream ----------------------------------------------------------------------------------

TEST(TurnClient, StreamFramingSurvivesAnySplit) {
  SeededRandom rnd(3);
  TurnClientConfig c;
  c.server = {kServer, TurnTransport::Tcp, "user", "secret"};
  TurnClient client(c, rnd);
  client.start(fromMicros(1'000'000));
  auto request = client.pollTransmit();
  ASSERT_TRUE(request);
  auto m = stun::parse(*request);
  ASSERT_TRUE(m);
  // The server's 401, then a success, then ChannelData for an unknown channel (ignored) — as one byte stream
  // delivered one byte at a time.
  Bytes challenge, stream;
  stun::MessageBuilder(challenge, stun::Method::Allocate, stun::Class::ErrorResponse, m->transactionId())
      .addErrorCode(401, "Unauthorized")
      .addString(stun::attr::Realm, "r")
      .addString(stun::attr::Nonce, "n");
  stream.insert(stream.end(), challenge.begin(), challenge.end());
  Bytes cd;
  stun::writeChannelData(cd, 0x4001, payload(23, 5), true);
  EXPECT_EQ(cd.size(), 12u);  // padded to 4 over a stream (RFC 8656 12.5)
  stream.insert(stream.end(), cd.begin(), cd.end());
  int frames = 0;
  for (std::uint8_t byte : stream) {
    client.appendStream(ByteView(&byte, 1));
    while (auto f = client.nextFrame()) {
      ++frames;
      EXPECT_FALSE(client.handleMessage(*f, fromMicros(1'000'000)));
    }
  }
  EXPECT_EQ(frames, 2);
  // The challenge made it retry with credentials.
  auto retry = client.pollTransmit();
  ASSERT_TRUE(retry);
  auto r = stun::parse(*retry);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->username(), "user");
  EXPECT_TRUE(r->checkIntegrity(stun::longTermKey("user", "r", "secret")));
  // Over a stream a request is sent once and times out as a whole.
  EXPECT_EQ(client.nextDeadline(), fromMicros(1'000'000) + c.streamTimeout);
  const Bytes garbage = {0x99, 0, 0, 0};
  client.appendStream(garbage);
  EXPECT_FALSE(client.nextFrame());
  EXPECT_EQ(client.state(), TurnClient::State::Failed);
  EXPECT_NE(client.failureReason().find("out of sync"), std::string::npos);
}

}  // namespace
}  // namespace rtcpeer::ice
