#include "common/result.hpp"

#include <gtest/gtest.h>

#include <memory>

using namespace rtcpeer;

namespace {
Result<int> parsePositive(int v) {
  if (v <= 0) return fail("value must be positive, got " + std::to_string(v), 31);
  return v * 2;
}
}  // namespace

TEST(Result, CarriesValueOrReason) {
  auto good = parsePositive(4);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 8);
  auto bad = parsePositive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.reason(), "value must be positive, got -1");
  EXPECT_EQ(bad.failure().code, 31);
  EXPECT_FALSE(bad.status().ok());
  EXPECT_EQ(bad.status().reason(), bad.reason());
}

TEST(Result, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(5));
  ASSERT_TRUE(r);
  auto p = std::move(r).value();
  EXPECT_EQ(*p, 5);
}

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  Status f = fail("nope");
  EXPECT_FALSE(f);
  EXPECT_EQ(f.reason(), "nope");
}
