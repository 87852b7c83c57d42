// sockaddr conversions shared by the shell's socket types (src/net only).
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>

#include "common/address.hpp"

namespace rtcpeer::net::detail {

socklen_t toSockaddr(const SocketAddress& a, sockaddr_storage& ss) noexcept;
SocketAddress fromSockaddr(const sockaddr* sa) noexcept;
/// "what: strerror(errno)".
std::string errnoText(std::string_view what);

}  // namespace rtcpeer::net::detail
