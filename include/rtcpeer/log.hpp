#pragma once

#include <functional>
#include <string_view>

namespace rtcpeer {

enum class LogLevel { Trace = 0, Debug = 1, Info = 2, Warning = 3, Error = 4, None = 5 };

/// Receives every log line at or above the current level. `component` names the layer ("ice", "dtls", ...).
///
/// Threads: the sink is called on whichever thread called into rtcpeer (the one calling poll() on the
/// connection that logs), so with PeerConnections on several threads it is called from several threads, but
/// never twice at once: calls are serialized by the library, and the sink needs no lock of its own for that.
/// The sink may call setLogSink() and setLogLevel(), and anything that logs; lines logged on its thread while it
/// runs go to standard error, not back into the sink (no recursion, no deadlock). It must not call methods of a
/// PeerConnection or DataChannel: it runs in the middle of their work (queue what it wants and act after poll()).
/// If it throws, the line is lost and nothing else. Keep it short: other threads' lines wait for it.
using LogSink = std::function<void(LogLevel level, std::string_view component, std::string_view message)>;

/// Replaces the process-wide sink; an empty function restores the default (standard error). Called from outside
/// a sink, it waits for a line another thread is delivering, so the old sink is never called once it returns
/// (then destroyed here). Called from inside the sink, it takes effect from the next line.
void setLogSink(LogSink sink);
/// Lines below `level` are discarded before they are formatted. Default: Warning.
void setLogLevel(LogLevel level);
LogLevel logLevel() noexcept;

}  // namespace rtcpeer
