// A private name service for tests that resolve host names: the test process moves into its own network and
// mount namespaces (only `lo`, up), bind-mounts its own /etc/hosts and /etc/resolv.conf (what `ip netns exec`
// does with /etc/netns/<ns>/hosts and resolv.conf), and runs Debian's dnsmasq on 127.0.0.1:53 answering the
// names it is given and NXDOMAIN for *.invalid (it forwards nothing). Nothing reaches real DNS.
//
// Needs root (unshare) and /usr/sbin/dnsmasq (dnsmasq-base); `error()` says why it is unavailable.
#pragma once

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <span>
#include <utility>
#include <vector>

#include "net/udp.hpp"

namespace rtcpeer::net::test {

class PrivateNames {
 public:
  /// `hosts`: lines for the namespace's /etc/hosts ("127.0.0.1 stun.hosts.test"); `dns`: (name, IP) records
  /// dnsmasq serves.
  PrivateNames(const std::vector<std::string>& hosts, const std::vector<std::pair<std::string, std::string>>& dns) {
    if (geteuid() != 0) {
      error_ = "not root: no private network/mount namespace";
      return;
    }
    if (access("/usr/sbin/dnsmasq", X_OK) != 0) {
      error_ = "dnsmasq is not installed (Debian dnsmasq-base)";
      return;
    }
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
      error_ = std::string("unshare: ") + std::strerror(errno);
      return;
    }
    // Our bind mounts stay in this namespace.
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      error_ = std::string("mount --make-rprivate /: ") + std::strerror(errno);
      return;
    }
    if (!loopbackUp()) {
      error_ = "cannot bring lo up";
      return;
    }
    char dir[] = "/tmp/rtcpeer-names-XXXXXX";
    if (!mkdtemp(dir)) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = dir;
    {
      std::ofstream h(dir_ + "/hosts");
      h << "127.0.0.1 localhost\n::1 localhost\n";
      for (const auto& line : hosts) h << line << "\n";
      std::ofstream r(dir_ + "/resolv.conf");
      r << "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n";
    }
    for (const char* name : {"hosts", "resolv.conf"}) {
      const std::string source = dir_ + "/" + name, target = std::string("/etc/") + name;
      if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        error_ = "bind mount over " + target + ": " + std::strerror(errno);
        return;
      }
    }
    std::vector<std::string> args = {"/usr/sbin/dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                                     "--no-poll", "--listen-address=127.0.0.1", "--bind-interfaces", "--port=53",
                                     "--user=root", "--pid-file=" + dir_ + "/dnsmasq.pid", "--log-queries",
                                     "--local=/invalid/",  // authoritative: NXDOMAIN for *.invalid
                                     "--log-facility=" + dir_ + "/dnsmasq.log"};
    for (const auto& [name, ip] : dns) args.push_back("--host-record=" + name + "," + ip);
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    if (!waitListening()) error_ = "dnsmasq did not come up: " + log();
  }
  ~PrivateNames() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    for (const char* target : {"/etc/hosts", "/etc/resolv.conf"}) umount2(target, MNT_DETACH);
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  PrivateNames(const PrivateNames&) = delete;
  PrivateNames& operator=(const PrivateNames&) = delete;

  [[nodiscard]] const std::string& error() const { return error_; }
  /// dnsmasq's query log: which names went over DNS.
  [[nodiscard]] std::string log() const {
    std::ifstream f(dir_ + "/dnsmasq.log");
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  }

 private:
  static bool loopbackUp() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    const bool up = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 &&
                    (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) == 0);
    if (fd >= 0) ::close(fd);
    return up;
  }
  // Ready when it answers a query (for a name it does not know: NXDOMAIN), as coturn.hpp waits for coturn; each
  // attempt waits for the answer itself, and the loop ends early if dnsmasq exits (e.g. the port is taken).
  bool waitListening() {
    auto sock = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
    if (!sock) return false;
    // A standard query: id 0x1234, RD, one question "ready.test" IN A.
    const std::uint8_t query[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'r', 'e', 'a', 'd', 'y',
                                  4,    't',  'e',  's',  't', 0, 0, 1, 0, 1};
    for (int attempt = 0; attempt < 100; ++attempt) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      sock->sendTo(*SocketAddress::parse("127.0.0.1", 53), ByteView(query, sizeof query));
      const int fd = sock->fd();
      auto ready = wait(std::span(&fd, 1), now() + std::chrono::milliseconds(100));
      if (ready && *ready > 0 && !sock->recvBatch().empty()) return true;
    }
    return false;
  }

  std::string dir_;
  std::string error_;
  pid_t pid_ = -1;
};

}  // namespace rtcpeer::net::test
