// Internal logging: RTCPEER_LOG(Level, "component", a << b << c). The level check is a relaxed atomic load, and
// the stream expression is evaluated only when the line will be emitted.
#pragma once

#include <sstream>

#include "rtcpeer/log.hpp"

namespace rtcpeer::detail {

bool logEnabled(LogLevel level) noexcept;
void logWrite(LogLevel level, std::string_view component, std::string_view message);

}  // namespace rtcpeer::detail

#define RTCPEER_LOG(level, component, expr)                                       \
  do {                                                                            \
    if (::rtcpeer::detail::logEnabled(::rtcpeer::LogLevel::level)) {              \
      std::ostringstream rtcpeer_log_os_;                                         \
      rtcpeer_log_os_ << expr;                                                    \
      ::rtcpeer::detail::logWrite(::rtcpeer::LogLevel::level, component,          \
                                  rtcpeer_log_os_.str());                         \
    }                                                                             \
  } while (0)
