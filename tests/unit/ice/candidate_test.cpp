#include "ice/candidate.hpp"

#include <gtest/gtest.h>

namespace rtcpeer::ice {
namespace {

TEST(Candidate, ParsesHostIpv4) {
  auto c = parseCandidate("a=candidate:842163049 1 udp 1677729535 192.0.2.7 54400 typ host generation 0 "
                          "ufrag EsAw network-id 1 network-cost 10\r\n");
  ASSERT_TRUE(c) << c.reason();
  EXPECT_EQ(c->foundation, "842163049");
  EXPECT_EQ(c->component, 1);
  EXPECT_EQ(c->transport, Transport::Udp);
  EXPECT_EQ(c->priority, 1677729535u);
  EXPECT_EQ(c->address, *SocketAddress::parse("192.0.2.7", 54400));
  EXPECT_EQ(c->type, CandidateType::Host);
  EXPECT_FALSE(c->related.valid());
  EXPECT_EQ(c->extension("ufrag"), "EsAw");
  EXPECT_EQ(c->extension("network-cost"), "10");
  EXPECT_EQ(c->extensions.size(), 4u);
}

TEST(Candidate, ParsesSrflxIpv6WithRelated) {
  auto c = parseCandidate("candidate:2 1 UDP 1686052607 2001:db8::5 61000 typ srflx raddr fd00::2 rport 5000");
  ASSERT_TRUE(c) << c.reason();
  EXPECT_TRUE(c->address.isV6());
  EXPECT_EQ(c->address.port(), 61000);
  EXPECT_EQ(c->type, CandidateType::ServerReflexive);
  EXPECT_EQ(c->related, *SocketAddress::parse("fd00::2", 5000));
}

TEST(Candidate, AcceptsMdnsHostName) {
  auto c = parseCandidate("candidate:1 1 udp 2122260223 1f2e3d4c-aaaa-bbbb-cccc-0123456789ab.local 50123 typ host");
  ASSERT_TRUE(c) << c.reason();
  EXPECT_TRUE(c->isMdns());
  EXPECT_FALSE(c->address.valid());
  EXPECT_EQ(c->address.port(), 50123);
  EXPECT_EQ(c->hostname, "1f2e3d4c-aaaa-bbbb-cccc-0123456789ab.local");
}

TEST(Candidate, ParsesTcpAndPrflxAndRelay) {
  auto tcp = parseCandidate("candidate:3 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active generation 0");
  ASSERT_TRUE(tcp) << tcp.reason();
  EXPECT_EQ(tcp->transport, Transport::Tcp);
  EXPECT_EQ(tcp->tcpType, "active");
  auto relay = parseCandidate("candidate:4 1 udp 41885439 203.0.113.9 3478 typ relay raddr 0.0.0.0 rport 0");
  ASSERT_TRUE(relay) << relay.reason();
  EXPECT_EQ(relay->type, CandidateType::Relay);
  auto prflx = parseCandidate("candidate:5 1 udp 1845501695 198.51.100.3 4000 typ prflx");
  ASSERT_TRUE(prflx);
  EXPECT_EQ(prflx->type, CandidateType::PeerReflexive);
}

TEST(Candidate, RoundTrips) {
  for (const char* line : {
           "candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host",
           "candidate:ab+/ 2 udp 1694498815 203.0.113.4 6000 typ srflx raddr 10.0.0.2 rport 7000 generation 0",
           "candidate:x 1 udp 2130706431 ::1 1 typ host",
           "candidate:m 1 udp 2122260223 abc.local 9 typ host network-cost 999",
           "candidate:t 1 tcp 1518280447 192.0.2.1 9 typ host tcptype passive",
       }) {
    auto c = parseCandidate(line);
    ASSERT_TRUE(c) << line << ": " << c.reason();
    EXPECT_EQ(c->toSdp(), line);
    auto again = parseCandidate(c->toSdp());
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *c);
  }
}

TEST(Candidate, MalformedLinesGiveReasons) {
  struct Case {
    const char* line;
    const char* mentions;
  } cases[] = {
      {"candidat:1 1 udp 1 1.2.3.4 5 typ host", "candidate:"},
      {"candidate: 1 udp 1 1.2.3.4 5 typ host", "component"},
      {"candidate:1 0 udp 1 1.2.3.4 5 typ host", "component"},
      {"candidate:1 1 sctp 1 1.2.3.4 5 typ host", "transport"},
      {"candidate:1 1 udp 99999999999 1.2.3.4 5 typ host", "priority"},
      {"candidate:1 1 udp 1 1.2.3.4 70000 typ host", "port"},
      {"candidate:1 1 udp 1 1.2.3.4 5 type host", "typ"},
      {"candidate:1 1 udp 1 1.2.3.4 5 typ bogus", "candidate type"},
      {"candidate:1 1 udp 1 1.2.3.4 5 typ host generation", "without value"},
      {"candidate:1 1 udp 1 bad_addr! 5 typ host", "connection address"},
      {"candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.2.3.4 rport x", "rport"},
      {"candidate:1 1 udp 1 1.2.3.4", "port"},
      {"candidate:1 1 udp 1 1.2.3.4 5 typ srflx rport 5", "raddr/rport"},
      {"candidate:1 1 udp 1 1.2.3.4 5 typ host x a\rb", "CR or LF"},
      {"candidate:fooooooooooooooooooooooooooooooooo 1 udp 1 1.2.3.4 5 typ host", "foundation"},
  };
  for (const auto& k : cases) {
    auto c = parseCandidate(k.line);
    ASSERT_FALSE(c) << k.line;
    EXPECT_NE(c.reason().find(k.mentions), std::string::npos) << k.line << " -> " << c.reason();
  }
}

TEST(Candidate, PriorityFormula) {
  EXPECT_EQ(Candidate::computePriority(CandidateType::Host, 65535, 1), 2130706431u);
  EXPECT_EQ(Candidate::computePriority(CandidateType::ServerReflexive, 65535, 1), 1694498815u);
  EXPECT_EQ(Candidate::computePriority(CandidateType::Relay, 0, 2), 254u);
}

}  // namespace
}  // namespace rtcpeer::ice
