#include "common.hpp"

namespace rtcpeer::tools {

const char* stateName(ConnectionState state) {
  switch (state) {
    case ConnectionState::New: return "new";
    case ConnectionState::Connecting: return "connecting";
    case ConnectionState::Connected: return "connected";
    case ConnectionState::Disconnected: return "disconnected";
    case ConnectionState::Failed: return "failed";
    case ConnectionState::Closed: return "closed";
  }
  return "?";
}

const char* stateName(GatheringState state) {
  switch (state) {
    case GatheringState::New: return "new";
    case GatheringState::Gathering: return "gathering";
    case GatheringState::Complete: return "complete";
  }
  return "?";
}

const char* stateName(SignalingState state) {
  switch (state) {
    case SignalingState::Stable: return "stable";
    case SignalingState::HaveLocalOffer: return "have-local-offer";
    case SignalingState::HaveRemoteOffer: return "have-remote-offer";
    case SignalingState::HaveLocalPranswer: return "have-local-pranswer";
    case SignalingState::HaveRemotePranswer: return "have-remote-pranswer";
    case SignalingState::Closed: return "closed";
  }
  return "?";
}

const char* stateName(ReadyState state) {
  switch (state) {
    case ReadyState::Connecting: return "connecting";
    case ReadyState::Open: return "open";
    case ReadyState::Closing: return "closing";
    case ReadyState::Closed: return "closed";
  }
  return "?";
}

void setVerbosity(int verbose, bool quiet) {
  if (quiet && verbose == 0) {
    setLogLevel(LogLevel::Error);
  } else if (verbose >= 3) {
    setLogLevel(LogLevel::Trace);
  } else if (verbose == 2) {
    setLogLevel(LogLevel::Debug);
  } else if (verbose == 1) {
    setLogLevel(LogLevel::Info);
  } else {
    setLogLevel(LogLevel::Warning);
  }
}

}  // namespace rtcpeer::tools
