#include "common.hpp"

#include <CLI/CLI.hpp>

#include <optional>
#include <string_view>

namespace rtcpeer::tools {
namespace {

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "%XX" escapes, so a TURN password in a URL may hold ':' or '@'.
std::optional<std::string> percentDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || hexDigit(s[i + 1]) < 0 || hexDigit(s[i + 2]) < 0) return std::nullopt;
    out += static_cast<char>(hexDigit(s[i + 1]) * 16 + hexDigit(s[i + 2]));
    i += 2;
  }
  return out;
}

}  // namespace

void addIceOptions(CLI::App* cmd, IceOptions& ice) {
  cmd->add_option("--ice-server", ice.servers,
                  "STUN/TURN server, repeatable: stun:HOST[:PORT], turn:[USER:PASSWORD@]HOST[:PORT][?transport=tcp], "
                  "turns:[USER:PASSWORD@]HOST[:PORT]")
      ->allow_extra_args(false);
  cmd->add_option("--ice-username", ice.username, "TURN username for --ice-server URLs without one");
  cmd->add_option("--ice-credential", ice.credential, "TURN password for --ice-server URLs without one");
  cmd->add_flag("--relay-only", ice.relayOnly,
                "Gather and use only relay candidates (iceTransportPolicy \"relay\"; needs a turn: server)");
  cmd->add_flag("--ice-lite", ice.iceLite,
                "ICE lite (Configuration::iceLite): host candidates only, no checks of our own; for a server with a "
                "public address whose peers run full ICE");
  cmd->add_option("--udp-mux", ice.udpMux,
                  "Share this one local UDP port with every other connection of the process that sets it "
                  "(Configuration::udpMux), as a server behind one port does")
      ->check(CLI::Range(1, 65535));
}

std::string applyIceOptions(const IceOptions& ice, Configuration& config) {
  bool relay = false;
  for (const std::string& arg : ice.servers) {
    IceServer server{{}, ice.username, ice.credential};
    // scheme ":" [userinfo "@"] host...: the credentials are cut out so the URL is the W3C form.
    std::string url = arg;
    const auto colon = url.find(':');
    const auto at = url.substr(0, url.find('?')).rfind('@');
    if (colon != std::string::npos && at != std::string::npos && at > colon) {
      const std::string_view userinfo = std::string_view(url).substr(colon + 1, at - colon - 1);
      const auto sep = userinfo.find(':');
      auto user = percentDecode(userinfo.substr(0, sep));
      auto password = percentDecode(sep == std::string_view::npos ? "" : userinfo.substr(sep + 1));
      url = url.substr(0, colon + 1) + url.substr(at + 1);
      if (sep == std::string_view::npos || !user || !password || user->empty())
        return "--ice-server " + url + ": credentials in the URL must be USER:PASSWORD@ (percent-encoded)";
      server.username = std::move(*user);
      server.credential = std::move(*password);
    }
    IceServerUrl parsed;
    std::string why;
    if (IceServerUrl::parse(url, parsed, &why) != Error::Ok) return "--ice-server " + url + ": " + why;
    if (parsed.scheme == IceServerUrl::Scheme::Stun) {
      server.username.clear();  // STUN binding requests carry no credentials
      server.credential.clear();
    } else {
      relay = true;
      if (server.username.empty() || server.credential.empty())
        return "--ice-server " + url + " is a TURN server: give --ice-username and --ice-credential, or "
               "turn:USER:PASSWORD@host";
    }
    server.urls.push_back(std::move(url));
    config.iceServers.push_back(std::move(server));
  }
  config.relayOnly = ice.relayOnly;
  config.iceLite = ice.iceLite;
  if (ice.udpMux) {
    config.udpMux = true;
    config.portRangeBegin = config.portRangeEnd = ice.udpMux;
  }
  if (ice.iceLite && ice.relayOnly) return "--ice-lite gathers host candidates only: it excludes --relay-only";
  if (ice.relayOnly && !relay) return "--relay-only needs a turn: or turns: --ice-server";
  std::string why;
  if (config.validate(&why) != Error::Ok) return why;
  return {};
}

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
