// What the UDP mux reads of a datagram to route it (mux::inspect, see udp_mux.hpp): STUN class and method, the
// transaction id, the ufrag of a Binding request's USERNAME, TURN messages and ChannelData. No allocation; never
// reads outside the datagram.
#include <algorithm>

#include "net/udp_mux.hpp"

namespace rtcpeer::net {

namespace mux {

namespace {
constexpr std::uint32_t kMagicCookie = 0x2112A442;
constexpr std::uint16_t kUsername = 0x0006;

std::uint16_t be16(const std::uint8_t* p) noexcept { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
std::uint32_t be32(const std::uint8_t* p) noexcept {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}
}  // namespace

Inspection inspect(ByteView d) noexcept {
  Inspection r;
  if (d.empty()) return r;
  if (d[0] >= 64 && d[0] <= 79) {  // TURN ChannelData (RFC 7983, RFC 8656 12.4)
    r.kind = Inspection::Kind::Turn;
    return r;
  }
  // RFC 5389 6: two zero bits, the magic cookie, a length that is a multiple of 4 and matches the datagram.
  if (d.size() < 20 || d[0] > 3 || be32(d.data() + 4) != kMagicCookie) return r;
  const std::size_t length = be16(d.data() + 2);
  if (length % 4 != 0 || length + 20 != d.size()) return r;
  const std::uint16_t type = be16(d.data());
  const std::uint16_t method = static_cast<std::uint16_t>((type & 0x000F) | (type & 0x00E0) >> 1 | (type & 0x3E00) >> 2);
  const int cls = (type & 0x0010 ? 1 : 0) | (type & 0x0100 ? 2 : 0);
  std::copy(d.begin() + 8, d.begin() + 20, r.transaction.begin());
  r.binding = method == 0x001;
  // TURN client methods (RFC 8656 18): Allocate 3, Refresh 4, Send 6, CreatePermission 8, ChannelBind 9; the
  // server's Data indication (7) and the responses come back to the client, never through here as requests.
  const bool turn = method == 0x003 || method == 0x004 || method == 0x006 || method == 0x008 || method == 0x009;
  if (cls == 0 || cls == 1) {
    if (turn) {
      r.kind = Inspection::Kind::Turn;
      return r;
    }
    r.kind = cls == 0 ? Inspection::Kind::Request : Inspection::Kind::Indication;
  } else {
    r.kind = Inspection::Kind::Response;
    r.success = cls == 2;
    return r;
  }
  if (r.kind != Inspection::Kind::Request || !r.binding) return r;
  for (std::size_t at = 20; at + 4 <= d.size();) {
    const std::uint16_t attr = be16(d.data() + at);
    const std::size_t len = be16(d.data() + at + 2);
    if (len > d.size() - at - 4) break;
    if (attr == kUsername) {
      std::string_view user(reinterpret_cast<const char*>(d.data() + at + 4), len);
      r.ufrag = user.substr(0, user.find(':'));
      break;
    }
    at += 4 + ((len + 3) & ~std::size_t{3});
  }
  return r;
}

}  // namespace mux

}  // namespace rtcpeer::net
