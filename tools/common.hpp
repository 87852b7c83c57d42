// Shared pieces of the rtcpeer command-line tool: subcommand entry points, state names, timing, logging.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "rtcpeer/rtcpeer.hpp"

namespace CLI {
class App;
}

namespace rtcpeer::tools {

using Clock = std::chrono::steady_clock;

struct DemoOptions {
  std::size_t megabytes = 256;  ///< MiB moved over the reliable channel
  bool quiet = false;           ///< only the summary (and errors)
  int verbose = 0;              ///< library log level: 0 Warning, 1 Info, 2 Debug, 3+ Trace
};

/// ICE servers of peer/send/recv/chat: `--ice-server URL` (repeatable), `--ice-username`, `--ice-credential`,
/// `--relay-only` (registered by addIceOptions()).
struct IceOptions {
  std::vector<std::string> servers;
  std::string username;
  std::string credential;
  bool relayOnly = false;
  bool iceLite = false;
  std::uint16_t udpMux = 0;  ///< --udp-mux PORT: Configuration::udpMux on that one port
};

struct PeerOptions {
  std::vector<std::string> interfaces;  ///< Configuration::interfaces; empty: the library default
  IceOptions ice;
  int verbose = 0;
};

/// Registers the IceOptions command-line options on `cmd`.
void addIceOptions(CLI::App* cmd, IceOptions& ice);

/// Adds one IceServer per URL to `config` and sets relayOnly. A URL may carry its own credentials,
/// "turn:USER:PASSWORD@host[:port][?transport=tcp]" (percent-encode ':', '@' and '%' inside them), which take
/// precedence over `username`/`credential`. Returns why the result is unusable (passwords left out), or "".
std::string applyIceOptions(const IceOptions& ice, Configuration& config);

int runDemo(const DemoOptions& options);
int runPeer(const PeerOptions& options);

const char* stateName(ConnectionState state);
const char* stateName(GatheringState state);
const char* stateName(SignalingState state);
const char* stateName(ReadyState state);

/// Sets the library log level from -v counts; `quiet` lowers it to errors only.
void setVerbosity(int verbose, bool quiet);

inline double secondsSince(Clock::time_point start, Clock::time_point now = Clock::now()) {
  return std::chrono::duration<double>(now - start).count();
}

}  // namespace rtcpeer::tools
