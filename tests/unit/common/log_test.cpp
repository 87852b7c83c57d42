#include "common/log.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
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

// Issue 17 item 7: a sink that logs (it calls into rtcpeer, which logs) gets no recursive call and does not
// deadlock; its own lines go to standard error. It may replace itself from inside.
TEST(Log, ASinkThatLogsDoesNotRecurseOrDeadlock) {
  std::vector<std::string> lines;
  int depth = 0, maxDepth = 0;
  setLogLevel(LogLevel::Info);
  setLogSink([&](LogLevel, std::string_view, std::string_view m) {
    maxDepth = std::max(maxDepth, ++depth);
    lines.emplace_back(m);
    RTCPEER_LOG(Warning, "sink", "logged from inside the sink: to stderr");
    --depth;
  });
  RTCPEER_LOG(Info, "test", "one");
  RTCPEER_LOG(Info, "test", "two");
  EXPECT_EQ(maxDepth, 1);
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two"}));

  // A sink that replaces itself while it runs: the running one finishes, the next line goes to the new one.
  std::vector<std::string> second;
  setLogSink([&](LogLevel, std::string_view, std::string_view m) {
    lines.emplace_back(m);
    setLogSink([&](LogLevel, std::string_view, std::string_view m2) { second.emplace_back(m2); });
    lines.emplace_back("still running");
  });
  RTCPEER_LOG(Info, "test", "three");
  RTCPEER_LOG(Info, "test", "four");
  setLogSink({});
  setLogLevel(LogLevel::Warning);
  EXPECT_EQ(lines.back(), "still running");
  EXPECT_EQ(second, (std::vector<std::string>{"four"}));
}

// Lines from several threads reach the sink one at a time (the sink needs no lock of its own), and none is lost;
// after setLogSink() returns the old sink is not called again.
TEST(Log, SinkCallsFromSeveralThreadsAreSerialized) {
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  int count = 0;  // plain int: the library's serialization is what makes this safe (ASan/UBSan would not see a race,
                  // but the overlap flag does)
  setLogLevel(LogLevel::Info);
  setLogSink([&](LogLevel, std::string_view, std::string_view) {
    if (inside.fetch_add(1) != 0) overlapped = true;
    ++count;
    inside.fetch_sub(1);
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([] {
      for (int i = 0; i < 500; ++i) RTCPEER_LOG(Info, "thread", "line " << i);
    });
  for (auto& th : threads) th.join();
  setLogSink({});
  setLogLevel(LogLevel::Warning);
  EXPECT_FALSE(overlapped);
  EXPECT_EQ(count, 2000);
}
