// Makes OpenSSL's DTLS timer follow a test's virtual clock.
//
// OpenSSL 3.0 measures its DTLS retransmission timer with gettimeofday() (ssl/d1_lib.c) and DTLSv1_handle_timeout()
// does nothing until that real-time timer has expired. The simulator's clock runs far ahead of real time, so test
// binaries define gettimeofday() themselves (virtual_time.cpp); the dynamic linker binds libssl's reference to the
// executable's definition. While a VirtualClock is installed it reports the virtual time (offset to the real time
// at installation), otherwise the real time.
#pragma once

#include <cstdint>
#include <functional>

#include "common/time.hpp"

namespace rtcpeer::dtls::test {

class VirtualClock {
 public:
  explicit VirtualClock(std::function<Timestamp()> now);
  ~VirtualClock();
  VirtualClock(const VirtualClock&) = delete;
  VirtualClock& operator=(const VirtualClock&) = delete;
};

/// What gettimeofday() reports, in microseconds since the epoch.
std::int64_t wallMicros();

}  // namespace rtcpeer::dtls::test
