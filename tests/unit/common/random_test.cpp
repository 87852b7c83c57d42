#include "common/random.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace rtcpeer;

TEST(SeededRandom, SameSeedSameSequence) {
  SeededRandom a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    auto x = a.u64();
    EXPECT_EQ(x, b.u64());
    if (x != c.u64()) differs = true;
  }
  EXPECT_TRUE(differs);
}

TEST(Random, BelowAndBetweenStayInRange) {
  SeededRandom r(7);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 2000; ++i) {
    auto v = r.below(10);
    ASSERT_LT(v, 10u);
    seen.insert(v);
    auto w = r.between(-3, 3);
    ASSERT_GE(w, -3);
    ASSERT_LE(w, 3);
    double u = r.unit();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
  EXPECT_EQ(seen.size(), 10u);  // every residue appears
  EXPECT_EQ(r.below(0), 0u);
  EXPECT_EQ(r.between(5, 5), 5);
}

TEST(Random, IceCharsUseTheIceAlphabet) {
  SeededRandom r(1);
  auto s = r.iceChars(256);
  ASSERT_EQ(s.size(), 256u);
  for (char c : s) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/') << c;
}

TEST(CryptoRandom, ProducesDistinctValues) {
  CryptoRandom r;
  std::set<std::uint64_t> values;
  for (int i = 0; i < 64; ++i) values.insert(r.u64());
  EXPECT_EQ(values.size(), 64u);
  r.fill(std::span<std::uint8_t>());  // empty fill is a no-op
}
