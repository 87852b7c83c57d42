// The State Cookie (RFC 9260 5.1.3): everything needed to create the association, sent to the peer in INIT-ACK
// and returned in COOKIE-ECHO, so the responder keeps no state before COOKIE-ECHO. Authenticated with
// HMAC-SHA-256 under a per-association random secret; carries its creation time for the lifetime check.
#pragma once

#include <cstdint>

#include "common/bytes.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

namespace rtcpeer::sctp {

struct CookieState {
  std::uint32_t localTag = 0;
  std::uint32_t peerTag = 0;
  std::uint32_t localInitialTsn = 0;
  std::uint32_t peerInitialTsn = 0;
  std::uint32_t peerArwnd = 0;
  std::uint16_t peerOutStreams = 0;
  std::uint16_t peerInStreams = 0;
  std::uint32_t tieLocalTag = 0;  // the tags of an existing association (restart detection, 5.2.4)
  std::uint32_t tiePeerTag = 0;
  bool peerForwardTsn = false;
  bool peerIData = false;
  bool peerReconfig = false;
  bool peerZeroChecksum = false;
  std::int64_t createdUs = 0;
};

inline constexpr std::size_t kCookieSize = 4 * 7 + 2 * 2 + 4 + 8 + 32;

void encodeCookie(const CookieState& s, ByteView key, SpanWriter& out);
/// Verifies the MAC and the lifetime (RFC 9260 5.1.5 steps 1-3).
Result<CookieState> decodeCookie(ByteView cookie, ByteView key, Timestamp now, Duration lifetime);

}  // namespace rtcpeer::sctp
