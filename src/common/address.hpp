// An IPv4 or IPv6 transport address (address + UDP/TCP port), as the cores see it. Plain value type: cores parse
// and produce these; only src/net converts them to and from sockaddr.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace rtcpeer {

class SocketAddress {
 public:
  enum class Family : std::uint8_t { None = 0, V4 = 4, V6 = 6 };

  constexpr SocketAddress() noexcept = default;
  static SocketAddress v4(std::array<std::uint8_t, 4> ip, std::uint16_t port) noexcept;
  static SocketAddress v6(const std::array<std::uint8_t, 16>& ip, std::uint16_t port) noexcept;
  /// Parses a numeric IPv4 ("1.2.3.4") or IPv6 ("::1", "fe80::1%eth0" scope dropped) address; no DNS.
  static std::optional<SocketAddress> parse(std::string_view ip, std::uint16_t port) noexcept;
  /// Parses "1.2.3.4:5678" or "[::1]:5678".
  static std::optional<SocketAddress> parseWithPort(std::string_view text) noexcept;

  [[nodiscard]] Family family() const noexcept { return family_; }
  [[nodiscard]] bool isV4() const noexcept { return family_ == Family::V4; }
  [[nodiscard]] bool isV6() const noexcept { return family_ == Family::V6; }
  [[nodiscard]] bool valid() const noexcept { return family_ != Family::None; }
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  void setPort(std::uint16_t p) noexcept { port_ = p; }
  /// 4 bytes for IPv4 (in the first 4 of the array), 16 for IPv6.
  [[nodiscard]] const std::array<std::uint8_t, 16>& bytes() const noexcept { return ip_; }
  [[nodiscard]] std::size_t addressLength() const noexcept { return isV4() ? 4 : isV6() ? 16 : 0; }

  [[nodiscard]] bool isLoopback() const noexcept;
  [[nodiscard]] bool isLinkLocal() const noexcept;
  [[nodiscard]] bool isAny() const noexcept;

  /// "1.2.3.4" / "::1" (no port).
  [[nodiscard]] std::string ipString() const;
  /// "1.2.3.4:5678" / "[::1]:5678".
  [[nodiscard]] std::string toString() const;

  friend bool operator==(const SocketAddress&, const SocketAddress&) noexcept = default;
  [[nodiscard]] std::size_t hash() const noexcept;

 private:
  std::array<std::uint8_t, 16> ip_{};
  std::uint16_t port_ = 0;
  Family family_ = Family::None;
};

}  // namespace rtcpeer

template <>
struct std::hash<rtcpeer::SocketAddress> {
  std::size_t operator()(const rtcpeer::SocketAddress& a) const noexcept { return a.hash(); }
};
