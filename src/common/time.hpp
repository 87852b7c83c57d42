// Time as the protocol cores see it. Cores never read a clock: every entry point takes `Timestamp now`, and
// every core reports its next deadline as a Timestamp. Only the I/O shell (src/net) and the simulator's virtual
// clock (tests/sim) produce Timestamps.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>

namespace rtcpeer {

/// A clock tag with no now(): it exists so that core code cannot accidentally read real time.
struct CoreClock {
  using duration = std::chrono::microseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<CoreClock, duration>;
  static constexpr bool is_steady = true;
};

using Duration = std::chrono::microseconds;
using Timestamp = CoreClock::time_point;

/// "No deadline": the largest representable time.
inline constexpr Timestamp kNever = Timestamp::max();

using namespace std::chrono_literals;

inline constexpr Timestamp fromMicros(std::int64_t us) noexcept { return Timestamp(Duration(us)); }
inline constexpr std::int64_t toMicros(Timestamp t) noexcept { return t.time_since_epoch().count(); }
inline constexpr double toSeconds(Duration d) noexcept { return static_cast<double>(d.count()) / 1e6; }
inline constexpr Timestamp earliest(Timestamp a, Timestamp b) noexcept { return a < b ? a : b; }

}  // namespace rtcpeer
