#include "common/address.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace rtcpeer {

SocketAddress SocketAddress::v4(std::array<std::uint8_t, 4> ip, std::uint16_t port) noexcept {
  SocketAddress a;
  std::memcpy(a.ip_.data(), ip.data(), 4);
  a.port_ = port;
  a.family_ = Family::V4;
  return a;
}

SocketAddress SocketAddress::v6(const std::array<std::uint8_t, 16>& ip, std::uint16_t port) noexcept {
  SocketAddress a;
  a.ip_ = ip;
  a.port_ = port;
  a.family_ = Family::V6;
  return a;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view ip, std::uint16_t port) noexcept {
  if (ip.empty() || ip.size() > 63) return std::nullopt;
  char buf[64];
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';
  if (char* pct = std::strchr(buf, '%')) *pct = '\0';  // drop an IPv6 zone id
  std::array<std::uint8_t, 16> raw{};
  if (inet_pton(AF_INET, buf, raw.data()) == 1) return v4({raw[0], raw[1], raw[2], raw[3]}, port);
  if (inet_pton(AF_INET6, buf, raw.data()) == 1) return v6(raw, port);
  return std::nullopt;
}

std::optional<SocketAddress> SocketAddress::parseWithPort(std::string_view text) noexcept {
  std::string_view host, portText;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    portText = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) return std::nullopt;
    host = text.substr(0, colon);
    portText = text.substr(colon + 1);
  }
  if (portText.empty() || portText.size() > 5) return std::nullopt;
  unsigned port = 0;
  for (char c : portText) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port > 65535) return std::nullopt;
  return parse(host, static_cast<std::uint16_t>(port));
}

bool SocketAddress::isLoopback() const noexcept {
  if (isV4()) return ip_[0] == 127;
  if (isV6()) {
    static constexpr std::array<std::uint8_t, 16> kLoop{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return ip_ == kLoop;
  }
  return false;
}

bool SocketAddress::isLinkLocal() const noexcept {
  if (isV4()) return ip_[0] == 169 && ip_[1] == 254;
  if (isV6()) return ip_[0] == 0xfe && (ip_[1] & 0xc0) == 0x80;
  return false;
}

bool SocketAddress::isAny() const noexcept {
  for (std::size_t i = 0; i < addressLength(); ++i)
    if (ip_[i]) return false;
  return valid();
}

std::string SocketAddress::ipString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (isV4()) inet_ntop(AF_INET, ip_.data(), buf, sizeof buf);
  else if (isV6()) inet_ntop(AF_INET6, ip_.data(), buf, sizeof buf);
  else return "(none)";
  return buf;
}

std::string SocketAddress::toString() const {
  // Appended piecewise: g++ 12 reports a false -Wrestrict on chained operator+ at -O2.
  std::string s;
  s.reserve(56);
  if (isV6()) s += '[';
  s += ipString();
  if (isV6()) s += ']';
  s += ':';
  s += std::to_string(port_);
  return s;
}

std::size_t SocketAddress::hash() const noexcept {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  auto mix = [&](std::uint8_t b) { h = (h ^ b) * 1099511628211ull; };
  mix(static_cast<std::uint8_t>(family_));
  for (std::size_t i = 0; i < addressLength(); ++i) mix(ip_[i]);
  mix(static_cast<std::uint8_t>(port_ >> 8));
  mix(static_cast<std::uint8_t>(port_));
  return static_cast<std::size_t>(h);
}

}  // namespace rtcpeer
