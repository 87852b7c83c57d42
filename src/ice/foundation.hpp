// Candidate foundations of the ICE agent (shared by its source files).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/address.hpp"

namespace rtcpeer::ice::detail {

// Foundations (RFC 8445 5.1.1.3): equal for the same type, base IP and STUN server. A short hash keeps them
// within the 32 ice-char limit.
inline std::string foundationFor(std::string_view type, const SocketAddress& base, const SocketAddress& server) {
  std::uint32_t h = 2166136261u;
  auto mix = [&h](std::string_view s) {
    for (char c : s) h = (h ^ static_cast<std::uint8_t>(c)) * 16777619u;
  };
  mix(type);
  mix(base.ipString());
  if (server.valid()) mix(server.toString());
  return std::to_string(h);
}

}  // namespace rtcpeer::ice::detail
