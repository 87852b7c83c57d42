// A loopback-only network namespace for tests that bind fixed ports: the test process moves into its own network
// namespace (only `lo`, up), so a fixed port cannot collide with anything else on the machine and nothing it sends
// can leave it. Needs root (unshare); outside CI a test without it skips, under CI=true it fails.
#pragma once

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace rtcpeer::net::test {

/// Enters a fresh loopback-only network namespace once per process; "" on success, else why not.
inline const std::string& enterLoopbackNamespace() {
  static const std::string error = [] {
    if (geteuid() != 0) return std::string("not root: no private network namespace");
    if (unshare(CLONE_NEWNET) != 0) return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    const bool up = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 &&
                    (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) == 0);
    if (fd >= 0) ::close(fd);
    return up ? std::string() : std::string("cannot bring lo up");
  }();
  return error;
}

}  // namespace rtcpeer::net::test

/// In a test body or SetUp (the file includes gtest): enter the namespace, or skip (fail under CI=true).
#define RTCPEER_REQUIRE_LOOPBACK_NAMESPACE()                                             \
  do {                                                                                   \
    const std::string& why = ::rtcpeer::net::test::enterLoopbackNamespace();             \
    if (!why.empty()) {                                                                  \
      const char* ci = std::getenv("CI");                                                \
      if (ci && std::string(ci) == "true") FAIL() << why;                                \
      GTEST_SKIP() << why;                                                               \
    }                                                                                    \
  } while (false)
