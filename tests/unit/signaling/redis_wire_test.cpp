// What servers exchange through Redis (redis_wire.hpp): the redis:// URL and the relay envelope, strictly parsed.
#include "signaling/redis_wire.hpp"

#include <gtest/gtest.h>

namespace rtcpeer::signaling {
namespace {

TEST(RedisWire, UrlForms) {
  auto u = parseRedisUrl("redis://127.0.0.1:6380/3");
  ASSERT_TRUE(u.ok()) << u.reason();
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->db, 3);
  u = parseRedisUrl("redis://cache.example");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "cache.example");
  EXPECT_EQ(u->port, 6379);
  EXPECT_EQ(u->db, 0);
  u = parseRedisUrl("redis://[::1]:7000/");
  ASSERT_TRUE(u.ok()) << u.reason();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 7000);
  for (const char* bad : {"http://h", "redis://", "redis://h:", "redis://h:0", "redis://h:65536", "redis://h:x",
                          "redis://h/16", "redis://h/-1", "redis://h/01", "redis://u:p@h", "redis://[::1",
                          "redis://h h", "redis://[::1]x"})
    EXPECT_FALSE(parseRedisUrl(bad).ok()) << bad;
}

TEST(RedisWire, RelayRoundTripAndStrictness) {
  RelayMessage m{RelayKind::Close, "0123456789abcdef", 42, 4000, "Room host has disconnected"};
  auto back = parseRelay(serializeRelay(m), 1024);
  ASSERT_TRUE(back.ok()) << back.reason();
  EXPECT_EQ(back->kind, RelayKind::Close);
  EXPECT_EQ(back->from, m.from);
  EXPECT_EQ(back->conn, 42u);
  EXPECT_EQ(back->code, 4000);
  EXPECT_EQ(back->payload, m.payload);
  RelayMessage t{RelayKind::Text, "ffffffffffffffff", 1, 0, "{\"type\":4,\"id\":1,\"data\":\"a\\nb\"}\n"};
  back = parseRelay(serializeRelay(t), 1024);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->payload, t.payload);

  for (const char* bad : {"", "garbage", "Q 0123456789abcdef 1 0\n", "T 0123456789ABCDEF 1 0\n",
                          "T 0123456789abcde 1 0\n", "T 0123456789abcdef 0 0\n", "T 0123456789abcdef 01 0\n",
                          "T 0123456789abcdef 1 4000\n", "C 0123456789abcdef 1 0\n", "C 0123456789abcdef 1 999\n",
                          "T 0123456789abcdef 99999999999999999999 0\n", "T 0123456789abcdef 1\n",
                          "T 0123456789abcdef 1 0 \n", "T 0123456789abcdef -1 0\n"})
    EXPECT_FALSE(parseRelay(bad, 1024).ok()) << bad;
  EXPECT_FALSE(parseRelay("T 0123456789abcdef 1 0\n" + std::string(1025, 'x'), 1024).ok());
  EXPECT_TRUE(parseRelay("T 0123456789abcdef 1 0\n" + std::string(1024, 'x'), 1024).ok());
}

}  // namespace
}  // namespace rtcpeer::signaling
