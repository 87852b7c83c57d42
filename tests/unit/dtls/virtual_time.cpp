#include "unit/dtls/virtual_time.hpp"

#include <sys/time.h>

#include <atomic>
#include <cassert>
#include <ctime>

namespace rtcpeer::dtls::test {
namespace {

struct Installed {
  std::function<Timestamp()> now;
  Timestamp virtualStart;
  std::int64_t realStartUs;
};
std::atomic<Installed*> g_installed{nullptr};

std::int64_t realMicros() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace

VirtualClock::VirtualClock(std::function<Timestamp()> now) {
  auto* in = new Installed{std::move(now), {}, realMicros()};
  in->virtualStart = in->now();
  [[maybe_unused]] Installed* prev = g_installed.exchange(in);
  assert(prev == nullptr && "one VirtualClock at a time");
}

VirtualClock::~VirtualClock() { delete g_installed.exchange(nullptr); }

std::int64_t wallMicros() {
  const Installed* in = g_installed.load();
  return in ? in->realStartUs + toMicros(in->now()) - toMicros(in->virtualStart) : realMicros();
}

}  // namespace rtcpeer::dtls::test

// Interposes libc's gettimeofday for the whole test process (see virtual_time.hpp).
extern "C" int gettimeofday(struct timeval* __restrict tv, void* __restrict) noexcept {
  const std::int64_t us = rtcpeer::dtls::test::wallMicros();
  tv->tv_sec = static_cast<time_t>(us / 1000000);  // glibc declares tv nonnull
  tv->tv_usec = static_cast<suseconds_t>(us % 1000000);
  return 0;
}
