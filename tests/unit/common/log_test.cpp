#include "common/log.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace rtcpeer;

TEST(Log, SinkReceivesLinesAtOrAboveLevel) {
  std::vector<std::string> lines;
  setLogSink([&](LogLevel l, std::string_view c, std::string_view m) {
    lines.push_back(std::to_string(static_cast<int>(l)) + "|" + std::string(c) + "|" + std::string(m));
  });
  setLogLevel(LogLevel::Info);
  int evaluated = 0;
  RTCPEER_LOG(Debug, "test", "hidden " << ++evaluated);
  RTCPEER_LOG(Info, "test", "shown " << 42);
  RTCPEER_LOG(Error, "ice", "bad");
  setLogLevel(LogLevel::None);
  RTCPEER_LOG(Error, "ice", "silenced");
  setLogSink({});
  setLogLevel(LogLevel::Warning);
  EXPECT_EQ(evaluated, 0);  // below the level, the expression is not even evaluated
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "2|test|shown 42");
  EXPECT_EQ(lines[1], "4|ice|bad");
}
