// The process-wide log sink and level. Sink calls are serialized across threads; a line logged while the sink
// runs on the same thread (the sink called into rtcpeer, or logged through it) goes to standard error instead, so
// a sink that logs cannot recurse or deadlock; the sink may replace itself (setLogSink) from inside.
#include "common/log.hpp"

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <utility>

namespace rtcpeer {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::Warning)};
std::mutex g_sinkMutex;  // guards g_sink (held only to copy or swap the pointer)
std::mutex g_callMutex;  // held while a sink runs: one line at a time, whatever the thread
thread_local bool t_inSink = false;

std::shared_ptr<const LogSink>& sink() {
  static std::shared_ptr<const LogSink> s;
  return s;
}

void writeStderr(const char* level, std::string_view component, std::string_view message) {
  std::fprintf(stderr, "[rtcpeer %s %.*s] %.*s\n", level, static_cast<int>(component.size()), component.data(),
               static_cast<int>(message.size()), message.data());
}

const char* levelName(LogLevel l) {
  switch (l) {
    case LogLevel::Trace: return "trace";
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warning: return "warning";
    case LogLevel::Error: return "error";
    case LogLevel::None: break;
  }
  return "none";
}

}  // namespace

void setLogSink(LogSink s) {
  auto next = s ? std::make_shared<const LogSink>(std::move(s)) : nullptr;
  std::shared_ptr<const LogSink> old;
  // Outside a sink, wait for a line in progress on another thread: once this returns, the old sink is done.
  // Inside one, the running sink stays alive (logWrite holds it) until it returns.
  std::unique_lock<std::mutex> calls;
  if (!t_inSink) calls = std::unique_lock(g_callMutex);
  std::lock_guard lock(g_sinkMutex);
  old = std::exchange(sink(), std::move(next));
}

void setLogLevel(LogLevel level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

LogLevel logLevel() noexcept { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

namespace detail {

bool logEnabled(LogLevel level) noexcept {
  return level != LogLevel::None && static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void logWrite(LogLevel level, std::string_view component, std::string_view message) {
  if (t_inSink) {  // logged from inside the sink: never back into it
    writeStderr(levelName(level), component, message);
    return;
  }
  std::lock_guard calls(g_callMutex);
  std::shared_ptr<const LogSink> current;
  {
    std::lock_guard lock(g_sinkMutex);
    current = sink();
  }
  if (!current) {
    writeStderr(levelName(level), component, message);
    return;
  }
  t_inSink = true;
  try {
    (*current)(level, component, message);
  } catch (...) {
    // a throwing sink loses its line, never the caller's state
  }
  t_inSink = false;
}

}  // namespace detail
}  // namespace rtcpeer
