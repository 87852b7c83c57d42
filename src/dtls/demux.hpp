// RFC 7983 section 7: the first byte of every datagram on a WebRTC 5-tuple says which protocol it belongs to.
// This is the one place in the stack that makes that decision.
#pragma once

#include <cstdint>

#include "common/bytes.hpp"

namespace rtcpeer::dtls {

enum class PacketKind : std::uint8_t { Stun, Dtls, ChannelData, Rtp, Unknown };

/// Classifies a datagram by its first byte: STUN 0-3, DTLS 20-63, TURN ChannelData 64-79, RTP/RTCP 128-191
/// (RFC 7983 section 7, which supersedes the ranges of RFC 5764 section 5.1.2). Everything else, including an
/// empty datagram, is Unknown and must be dropped.
constexpr PacketKind classify(ByteView datagram) noexcept {
  if (datagram.empty()) return PacketKind::Unknown;
  const std::uint8_t b = datagram[0];
  if (b <= 3) return PacketKind::Stun;
  if (b >= 20 && b <= 63) return PacketKind::Dtls;
  if (b >= 64 && b <= 79) return PacketKind::ChannelData;
  if (b >= 128 && b <= 191) return PacketKind::Rtp;
  return PacketKind::Unknown;
}

}  // namespace rtcpeer::dtls
