#include "common/address.hpp"

#include <gtest/gtest.h>

#include <unordered_set>

using namespace rtcpeer;

TEST(SocketAddress, ParsesAndFormatsV4AndV6) {
  auto a = SocketAddress::parse("192.0.2.1", 3478);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->isV4());
  EXPECT_EQ(a->toString(), "192.0.2.1:3478");
  auto b = SocketAddress::parse("2001:db8::1", 80);
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->isV6());
  EXPECT_EQ(b->toString(), "[2001:db8::1]:80");
  auto c = SocketAddress::parse("fe80::1%eth0", 1);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->isLinkLocal());
  EXPECT_FALSE(SocketAddress::parse("host.local", 1));
  EXPECT_FALSE(SocketAddress::parse("", 1));
  EXPECT_FALSE(SocketAddress::parse("1.2.3.4.5", 1));
}

TEST(SocketAddress, ParsesWithPort) {
  EXPECT_EQ(SocketAddress::parseWithPort("127.0.0.1:9")->toString(), "127.0.0.1:9");
  EXPECT_EQ(SocketAddress::parseWithPort("[::1]:65535")->toString(), "[::1]:65535");
  EXPECT_FALSE(SocketAddress::parseWithPort("::1:80"));
  EXPECT_FALSE(SocketAddress::parseWithPort("127.0.0.1:65536"));
  EXPECT_FALSE(SocketAddress::parseWithPort("127.0.0.1:"));
  EXPECT_FALSE(SocketAddress::parseWithPort("[::1]80"));
}

TEST(SocketAddress, ClassifiesAndHashes) {
  EXPECT_TRUE(SocketAddress::parse("127.5.0.1", 0)->isLoopback());
  EXPECT_TRUE(SocketAddress::parse("::1", 0)->isLoopback());
  EXPECT_TRUE(SocketAddress::parse("0.0.0.0", 0)->isAny());
  EXPECT_FALSE(SocketAddress().valid());
  std::unordered_set<SocketAddress> set;
  set.insert(*SocketAddress::parse("10.0.0.1", 1));
  set.insert(*SocketAddress::parse("10.0.0.1", 1));
  set.insert(*SocketAddress::parse("10.0.0.1", 2));
  EXPECT_EQ(set.size(), 2u);
}
