// sockaddr conversions and descriptor creation shared by the shell's socket types (src/net only).
#pragma once

#include <sys/socket.h>

#include <cerrno>

#include <string>
#include <string_view>

#include "common/address.hpp"

namespace rtcpeer::net::detail {

socklen_t toSockaddr(const SocketAddress& a, sockaddr_storage& ss) noexcept;
SocketAddress fromSockaddr(const sockaddr* sa) noexcept;
/// "what: strerror(errno)"; for EMFILE and ENFILE also which limit was reached and how to raise it.
std::string errnoText(std::string_view what);

/// Raises the soft RLIMIT_NOFILE to the hard one (a process-wide change, as Go's runtime makes at start-up);
/// true if it was lower, so that a call that failed with EMFILE is worth one more try.
bool raiseDescriptorLimit() noexcept;

/// `make()` creates one descriptor (socket, epoll_create1, eventfd: the descriptor, or -1 and errno). On EMFILE
/// it is called once more after raiseDescriptorLimit(), so that a program creating thousands of connections does
/// not have to know about the soft limit (1024 by default, while the hard limit is often far higher).
template <class Make>
int newDescriptor(Make make) {
  int fd = make();
  if (fd < 0 && errno == EMFILE && raiseDescriptorLimit()) fd = make();
  return fd;
}

}  // namespace rtcpeer::net::detail
