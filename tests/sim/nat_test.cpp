// NAT behaviour (RFC 4787 mapping and filtering), mapping timeouts, hole punching, nesting, hairpinning, routing.
#include <gtest/gtest.h>

#include "sim/network.hpp"
#include "test_endpoints.hpp"

namespace rtcpeer::sim {
namespace {

using testing::addr;
using testing::Recorder;

const SocketAddress kNatIp = addr("1.1.1.1");
const SocketAddress kHost = addr("10.0.0.2", 5000);
const SocketAddress kS1 = addr("8.8.8.8", 3478);
const SocketAddress kS1OtherPort = addr("8.8.8.8", 3479);
const SocketAddress kS2 = addr("9.9.9.9", 4000);

// One host behind a NAT and three servers on the internet: two ports of one IP, and another IP.
struct SimNatBehind : ::testing::Test {
  void setUp(NatType type) {
    nat = net.addNat(type, kNatIp);
    net.bind(host, kHost, nat);
    net.bind(s1, kS1);
    net.bind(s1b, kS1OtherPort);
    net.bind(s2, kS2);
  }
  // Sends host -> server and returns the public address the server saw.
  SocketAddress mapped(const SocketAddress& server, Recorder& rec) {
    const std::size_t before = rec.rx.size();
    net.send(kHost, server, asBytes("out"), nat);
    net.runFor(100ms);
    EXPECT_EQ(rec.rx.size(), before + 1);
    return rec.rx.empty() ? SocketAddress{} : rec.rx.back().remote;
  }
  // Sends from a server to `to` and reports whether the host got it (with the right addresses).
  bool reaches(const SocketAddress& from, const SocketAddress& to) {
    const std::size_t before = host.rx.size();
    net.send(from, to, asBytes("in"));
    net.runFor(100ms);
    if (host.rx.size() == before) return false;
    EXPECT_EQ(host.rx.back().local, kHost);
    EXPECT_EQ(host.rx.back().remote, from);
    return true;
  }

  Network net{1};
  RealmId nat = 0;
  Recorder host, s1, s1b, s2;
};

TEST_F(SimNatBehind, FullConeAcceptsAnyoneOnceAMappingExists) {
  setUp(NatType::FullCone);
  EXPECT_FALSE(reaches(kS2, addr("1.1.1.1", 20000)));
  EXPECT_EQ(net.stats().natDrops, 1u);
  const SocketAddress pub = mapped(kS1, s1);
  EXPECT_EQ(pub.ipString(), "1.1.1.1");
  EXPECT_TRUE(reaches(kS2, pub));
  EXPECT_TRUE(reaches(kS1OtherPort, pub));
  EXPECT_EQ(mapped(kS2, s2), pub);  // endpoint-independent mapping
}

TEST_F(SimNatBehind, AddressRestrictedFiltersOnAddressOnly) {
  setUp(NatType::AddressRestricted);
  const SocketAddress pub = mapped(kS1, s1);
  EXPECT_TRUE(reaches(kS1, pub));
  EXPECT_TRUE(reaches(kS1OtherPort, pub));
  EXPECT_FALSE(reaches(kS2, pub));
  EXPECT_EQ(net.stats().natDrops, 1u);
  EXPECT_EQ(mapped(kS2, s2), pub);
  EXPECT_TRUE(reaches(kS2, pub));
}

TEST_F(SimNatBehind, PortRestrictedAcceptsOnlyTheExactAddressAndPort) {
  setUp(NatType::PortRestricted);
  const SocketAddress pub = mapped(kS1, s1);
  EXPECT_TRUE(reaches(kS1, pub));
  EXPECT_FALSE(reaches(kS1OtherPort, pub));
  EXPECT_FALSE(reaches(kS2, pub));
  EXPECT_EQ(net.stats().natDrops, 2u);
  EXPECT_EQ(mapped(kS2, s2), pub);  // still endpoint-independent mapping
  EXPECT_TRUE(reaches(kS2, pub));
}

TEST_F(SimNatBehind, SymmetricMapsEachDestinationToItsOwnPort) {
  setUp(NatType::Symmetric);
  const SocketAddress toS1 = mapped(kS1, s1);
  const SocketAddress toS1b = mapped(kS1OtherPort, s1b);
  const SocketAddress toS2 = mapped(kS2, s2);
  EXPECT_NE(toS1.port(), toS1b.port());
  EXPECT_NE(toS1.port(), toS2.port());
  EXPECT_NE(toS1b.port(), toS2.port());
  EXPECT_EQ(mapped(kS1, s1), toS1);  // the mapping is reused for the same destination
  EXPECT_TRUE(reaches(kS1, toS1));
  EXPECT_TRUE(reaches(kS2, toS2));
  EXPECT_FALSE(reaches(kS2, toS1));
  EXPECT_FALSE(reaches(kS1OtherPort, toS1));
}

TEST_F(SimNatBehind, MappingExpiresAfterIdleTimeoutAndOutboundRefreshesIt) {
  setUp(NatType::PortRestricted);
  net.setNatTimeout(nat, 5s);
  const SocketAddress pub = mapped(kS1, s1);
  net.runFor(4s);
  EXPECT_TRUE(reaches(kS1, pub));  // inbound traffic does not refresh
  net.runFor(1s);
  EXPECT_FALSE(reaches(kS1, pub));
  const SocketAddress again = mapped(kS1, s1);
  EXPECT_NE(again.port(), pub.port());  // a fresh mapping gets a fresh port
  for (int i = 0; i < 4; ++i) {
    net.runFor(3s);
    EXPECT_EQ(mapped(kS1, s1), again);
  }
  EXPECT_TRUE(reaches(kS1, again));
}

TEST_F(SimNatBehind, DefaultTimeoutIsThirtySeconds) {
  setUp(NatType::FullCone);
  const SocketAddress pub = mapped(kS1, s1);
  net.runFor(29s);
  EXPECT_TRUE(reaches(kS2, pub));
  net.runFor(1s);
  EXPECT_FALSE(reaches(kS2, pub));
}

// Two hosts behind their own NATs punch a hole toward each other's server-reflexive address.
struct Punch {
  Punch(NatType typeA, NatType typeB) {
    LinkConfig link;
    link.delay = 20ms;
    net.setDefaultLink(link);
    natA = net.addNat(typeA, addr("1.1.1.1"));
    natB = net.addNat(typeB, addr("2.2.2.2"));
    net.bind(a, kHost, natA);
    net.bind(b, kHost, natB);  // the same private address, in another realm
    net.bind(server, kS1);
    net.send(kHost, kS1, asBytes("a"), natA);
    net.send(kHost, kS1, asBytes("b"), natB);
    net.runFor(100ms);
    pubA = server.rx.at(0).remote;
    pubB = server.rx.at(1).remote;
  }
  Network net{1};
  RealmId natA, natB;
  Recorder a, b, server;
  SocketAddress pubA, pubB;
};

TEST(SimNat, HolePunchWorksWhenTheOtherSideOpensBeforeTheFirstPacketArrives) {
  Punch p(NatType::PortRestricted, NatType::PortRestricted);
  p.net.send(kHost, p.pubB, asBytes("1"), p.natA);
  p.net.runFor(5ms);  // B's NAT filters on arrival (20 ms), so B opening it at 5 ms lets the first packet in
  p.net.send(kHost, p.pubA, asBytes("2"), p.natB);
  p.net.runFor(100ms);
  ASSERT_EQ(p.b.rx.size(), 1u);
  EXPECT_EQ(p.b.rx[0].remote, p.pubA);
  ASSERT_EQ(p.a.rx.size(), 1u);
  EXPECT_EQ(p.a.rx[0].remote, p.pubB);
  EXPECT_EQ(p.net.stats().natDrops, 0u);
}

TEST(SimNat, HolePunchLosesTheFirstPacketWhenTheOtherSideOpensLate) {
  Punch p(NatType::PortRestricted, NatType::PortRestricted);
  p.net.send(kHost, p.pubB, asBytes("1"), p.natA);
  p.net.runFor(30ms);
  EXPECT_EQ(p.net.stats().natDrops, 1u);
  p.net.send(kHost, p.pubA, asBytes("2"), p.natB);
  p.net.runFor(100ms);
  EXPECT_EQ(p.a.rx.size(), 1u);
  p.net.send(kHost, p.pubB, asBytes("3"), p.natA);
  p.net.runFor(100ms);
  EXPECT_EQ(p.b.rx.size(), 1u);
}

TEST(SimNat, SymmetricAgainstPortRestrictedCannotPunch) {
  Punch p(NatType::Symmetric, NatType::PortRestricted);
  for (int i = 0; i < 3; ++i) {
    p.net.send(kHost, p.pubB, asBytes("1"), p.natA);  // leaves A's NAT from a new port B never saw
    p.net.send(kHost, p.pubA, asBytes("2"), p.natB);  // A's mapping toward the server filters B out
    p.net.runFor(100ms);
  }
  EXPECT_TRUE(p.a.rx.empty());
  EXPECT_TRUE(p.b.rx.empty());
  EXPECT_EQ(p.net.stats().natDrops, 6u);
}

TEST(SimNat, NestedNatsTranslateTwiceAndRouteRepliesBack) {
  Network net(1);
  const RealmId outer = net.addNat(NatType::PortRestricted, addr("1.1.1.1"));
  const RealmId inner = net.addNat(NatType::PortRestricted, addr("192.168.0.1"), outer);
  testing::Echo server(net);
  Recorder host, neighbour;
  net.bind(server, kS1);
  net.bind(host, kHost, inner);
  net.bind(neighbour, addr("192.168.0.5", 6000), outer);

  net.send(kHost, kS1, asBytes("hi"), inner);
  net.runFor(100ms);
  ASSERT_EQ(server.rx.size(), 1u);
  EXPECT_EQ(server.rx[0].remote.ipString(), "1.1.1.1");
  ASSERT_EQ(host.rx.size(), 1u);
  EXPECT_EQ(host.rx[0].remote, kS1);
  EXPECT_EQ(asString(host.rx[0].data), "hi");

  // A host in the middle realm is reached through the inner NAT only.
  net.send(kHost, addr("192.168.0.5", 6000), asBytes("n"), inner);
  net.runFor(100ms);
  ASSERT_EQ(neighbour.rx.size(), 1u);
  EXPECT_EQ(neighbour.rx[0].remote.ipString(), "192.168.0.1");
}

TEST(SimNat, HostsInOneRealmTalkDirectlyAndHairpinGoesThroughThePublicSide) {
  Network net(1);
  const RealmId lan = net.addNat(NatType::FullCone, addr("1.1.1.1"));
  Recorder a, b, server;
  const SocketAddress addrA = kHost, addrB = addr("10.0.0.3", 5000);
  net.bind(a, addrA, lan);
  net.bind(b, addrB, lan);
  net.bind(server, kS1);

  net.send(addrA, addrB, asBytes("direct"), lan);
  net.runFor(10ms);
  ASSERT_EQ(b.rx.size(), 1u);
  EXPECT_EQ(b.rx[0].remote, addrA);

  net.send(addrA, kS1, asBytes("x"), lan);
  net.send(addrB, kS1, asBytes("y"), lan);
  net.runFor(10ms);
  const SocketAddress pubA = server.rx.at(0).remote, pubB = server.rx.at(1).remote;
  net.send(addrA, pubB, asBytes("hairpin"), lan);
  net.runFor(10ms);
  ASSERT_EQ(b.rx.size(), 2u);
  EXPECT_EQ(b.rx[1].remote, pubA);  // the source is translated, as RFC 4787 REQ-9 asks
}

TEST(SimNat, UnroutableDestinationsAreCounted) {
  Network net(1);
  const RealmId lan = net.addNat(NatType::FullCone, addr("1.1.1.1"));
  Recorder a, s;
  net.bind(a, kHost, lan);
  net.bind(s, kS1);
  net.send(kS1, addr("7.7.7.7", 1), asBytes("x"));          // nobody has that IP
  net.send(kHost, addr("10.0.0.9", 1), asBytes("x"), lan);  // nor that one, anywhere up the chain
  net.send(kHost, kS1OtherPort, asBytes("x"), lan);         // the IP exists, the port is not bound
  net.runFor(100ms);
  EXPECT_EQ(net.stats().unroutable, 3u);
  EXPECT_EQ(net.stats().delivered, 0u);
  net.unbind(kS1);
  net.send(kHost, kS1, asBytes("x"), lan);
  net.runFor(100ms);
  EXPECT_EQ(net.stats().unroutable, 4u);
}

TEST(SimNat, LinksMatchTheSendersAddressesOrTheTranslatedOnes) {
  Network net(1);
  const RealmId lan = net.addNat(NatType::FullCone, addr("1.1.1.1"));
  Recorder a, b, s;
  net.bind(a, kHost, lan);
  net.bind(b, addr("10.0.0.3", 5000), lan);
  net.bind(s, kS1);
  LinkConfig wan;
  wan.delay = 40ms;
  net.setLink(addr("1.1.1.1"), kS1, wan);  // the NAT's public side to the server
  LinkConfig special;
  special.delay = 7ms;
  net.setLink(kHost, kS1, special);  // one host's own path wins over the translated view
  net.send(kHost, kS1, asBytes("a"), lan);
  net.send(addr("10.0.0.3", 5000), kS1, asBytes("b"), lan);
  net.runFor(1s);
  ASSERT_EQ(s.rx.size(), 2u);
  EXPECT_EQ(s.rx[0].at, fromMicros(1'007'000));
  EXPECT_EQ(s.rx[1].at, fromMicros(1'040'000));
}

}  // namespace
}  // namespace rtcpeer::sim
