// ICE candidates (RFC 8445 §5.1) and their SDP `candidate:` attribute (RFC 8839 §5.1), both directions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/address.hpp"
#include "common/result.hpp"

namespace rtcpeer::ice {

enum class CandidateType : std::uint8_t { Host, ServerReflexive, PeerReflexive, Relay };
enum class Transport : std::uint8_t { Udp, Tcp };

/// "host", "srflx", "prflx", "relay".
std::string_view toString(CandidateType type) noexcept;

struct Candidate {
  std::string foundation;
  std::uint16_t component = 1;
  Transport transport = Transport::Udp;
  std::uint32_t priority = 0;
  /// The transport address. For an mDNS host name (`<uuid>.local`) only the port is meaningful and
  /// `hostname` holds the name: rtcpeer does not resolve mDNS, connectivity then comes from peer-reflexive
  /// discovery (the peer's checks reveal its address).
  SocketAddress address;
  std::string hostname;
  CandidateType type = CandidateType::Host;
  /// raddr/rport; invalid when absent.
  SocketAddress related;
  /// TCP candidates only (RFC 6544 `tcptype`): "active", "passive" or "so".
  std::string tcpType;
  /// Extension attributes kept verbatim in order (`generation`, `ufrag`, `network-id`, `network-cost`, ...).
  std::vector<std::pair<std::string, std::string>> extensions;

  /// RFC 8445 §5.1.2.1: (2^24)*type-pref + (2^8)*local-pref + (256 - component).
  static std::uint32_t computePriority(CandidateType type, std::uint16_t localPreference,
                                       std::uint16_t component) noexcept;
  /// RFC 8445 §5.1.2.2 recommended type preferences (host 126, prflx 110, srflx 100, relay 0).
  static std::uint8_t typePreference(CandidateType type) noexcept;

  [[nodiscard]] bool isMdns() const noexcept { return !hostname.empty(); }
  /// The value of an extension attribute, or empty.
  [[nodiscard]] std::string_view extension(std::string_view name) const noexcept;

  /// The attribute value without "a=": "candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host ...".
  [[nodiscard]] std::string toSdp() const;

  friend bool operator==(const Candidate&, const Candidate&) = default;
};

/// Parses an SDP candidate attribute. Accepts "a=candidate:...", "candidate:..." (the JSON/trickle form) and a
/// trailing CR/LF. Unknown extension attributes are kept; a malformed line gives a reason naming the field.
Result<Candidate> parseCandidate(std::string_view line);

}  // namespace rtcpeer::ice
