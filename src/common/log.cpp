#include "common/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace rtcpeer {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::Warning)};
std::mutex g_mutex;

LogSink& sink() {
  static LogSink s;
  return s;
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
  std::lock_guard lock(g_mutex);
  sink() = std::move(s);
}

void setLogLevel(LogLevel level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

LogLevel logLevel() noexcept { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

namespace detail {

bool logEnabled(LogLevel level) noexcept {
  return level != LogLevel::None && static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void logWrite(LogLevel level, std::string_view component, std::string_view message) {
  std::lock_guard lock(g_mutex);
  if (sink()) {
    sink()(level, component, message);
    return;
  }
  std::fprintf(stderr, "[rtcpeer %s %.*s] %.*s\n", levelName(level), static_cast<int>(component.size()),
               component.data(), static_cast<int>(message.size()), message.data());
}

}  // namespace detail
}  // namespace rtcpeer
