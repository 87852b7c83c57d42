#pragma once

#include <functional>
#include <string_view>

namespace rtcpeer {

enum class LogLevel { Trace = 0, Debug = 1, Info = 2, Warning = 3, Error = 4, None = 5 };

/// Receives every log line at or above the current level. `component` names the layer ("ice", "dtls", ...).
/// The sink is called on whichever thread called into rtcpeer (normally the one calling poll()).
using LogSink = std::function<void(LogLevel level, std::string_view component, std::string_view message)>;

/// Replaces the process-wide sink; an empty function restores the default (standard error).
void setLogSink(LogSink sink);
/// Lines below `level` are discarded before they are formatted. Default: Warning.
void setLogLevel(LogLevel level);
LogLevel logLevel() noexcept;

}  // namespace rtcpeer
