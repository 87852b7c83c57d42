// Debian's coturn (`turnserver`) as a child process for tests: long-term credentials (user test:secret, realm
// rtcpeer.test) on 127.0.0.1 or ::1 (listening and relaying on that address only) with UDP+TCP on one port and
// TLS on another, using a self-signed certificate made at test time with the openssl CLI. Loopback peers are
// allowed (coturn denies them by default).
//
// Isolation: when the test runs as root, `enterLoopbackNamespace()` moves the test process into a new network
// namespace with only `lo` up (unshare(CLONE_NEWNET)), and coturn, forked afterwards, inherits it. Otherwise
// everything binds to 127.0.0.1 of the host's namespace, and the test output says so.
#pragma once

#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "ice/turn_client.hpp"
#include "net/stream.hpp"
#include "net/udp.hpp"
#include "stun/stun.hpp"
#include "unit/net/netns.hpp"

namespace rtcpeer::ice::test {

/// True if the process now runs in a fresh network namespace with only loopback (done once per process, shared
/// with the other tests' helper in unit/net/netns.hpp).
inline bool enterLoopbackNamespace() { return net::test::enterLoopbackNamespace().empty(); }

inline std::string findTurnserver() {
  for (const char* p : {"/usr/bin/turnserver", "/usr/sbin/turnserver", "/usr/local/bin/turnserver"})
    if (access(p, X_OK) == 0) return p;
  return {};
}

/// True if a UDP socket can be bound to ::1 (IPv6 may be disabled: no ::1 on lo).
inline bool ipv6LoopbackAvailable() { return net::UdpSocket::bind(*SocketAddress::parse("::1", 0)).ok(); }

/// A port free for both UDP and TCP on `host` (127.0.0.1 or ::1): bind UDP, then check TCP on the same number.
inline std::uint16_t freeLoopbackPort(const char* host = "127.0.0.1") {
  const bool v6 = SocketAddress::parse(host, 0)->isV6();
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto s = net::UdpSocket::bind(*SocketAddress::parse(host, 0));
    if (!s) return 0;
    const std::uint16_t port = s->localAddress().port();
    const int t = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    sin6.sin6_addr = in6addr_loopback;
    const bool ok = v6 ? ::bind(t, reinterpret_cast<sockaddr*>(&sin6), sizeof sin6) == 0
                       : ::bind(t, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0;
    ::close(t);
    if (ok) return port;
  }
  return 0;
}

class Coturn {
 public:
  static constexpr const char* kUser = "test";
  static constexpr const char* kPassword = "secret";
  static constexpr const char* kServerName = "turn.rtcpeer.test";

  /// Makes the certificate and starts coturn on `host` (127.0.0.1 or ::1); `error()` says why if it could not.
  explicit Coturn(const char* host = "127.0.0.1") : host_(host) {
    binary_ = findTurnserver();
    if (binary_.empty()) {
      error_ = "turnserver (coturn) is not installed";
      return;
    }
    char dir[] = "/tmp/rtcpeer-coturn-XXXXXX";
    if (!mkdtemp(dir)) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = dir;
    const std::string gen = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                            "-subj /CN=" + std::string(kServerName) + " -addext subjectAltName=DNS:" +
                            kServerName + ",IP:" + host_ + " -keyout " + dir_ + "/key.pem -out " + dir_ +
                            "/cert.pem >/dev/null 2>&1";
    if (std::system(gen.c_str()) != 0) {
      error_ = "openssl could not make a test certificate";
      return;
    }
    port = freeLoopbackPort(host);
    tlsPort = freeLoopbackPort(host);
    if (port == 0 || tlsPort == 0 || port == tlsPort) {
      error_ = "no free loopback port";
      return;
    }
    std::vector<std::string> args = {binary_,
                                     "-n",
                                     "--lt-cred-mech",
                                     std::string("--user=") + kUser + ":" + kPassword,
                                     "--realm=rtcpeer.test",
                                     "--listening-ip=" + host_,
                                     "--relay-ip=" + host_,
                                     "--listening-port=" + std::to_string(port),
                                     "--tls-listening-port=" + std::to_string(tlsPort),
                                     "--cert=" + dir_ + "/cert.pem",
                                     "--pkey=" + dir_ + "/key.pem",
                                     "--allow-loopback-peers",
                                     "--no-multicast-peers",
                                     "--no-cli",
                                     "--no-dtls",
                                     "--log-file=stdout",
                                     "--simple-log",
                                     "--pidfile=" + dir_ + "/turnserver.pid"};
    pid_ = fork();
    if (pid_ == 0) {
      const int log = open((dir_ + "/turnserver.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary_.c_str(), argv.data());
      _exit(127);
    }
    if (!waitReady(10s)) error_ = "coturn did not come up on " + server(port).toString() + " (log in " + dir_ +
                                  "/turnserver.log)";
  }
  ~Coturn() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  Coturn(const Coturn&) = delete;
  Coturn& operator=(const Coturn&) = delete;

  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] std::string caFile() const { return dir_ + "/cert.pem"; }
  [[nodiscard]] SocketAddress address(TurnTransport t) const {
    return server(t == TurnTransport::Tls ? tlsPort : port);
  }
  /// The server's log so far (for a failing test's message).
  [[nodiscard]] std::string log() const {
    std::string text;
    if (FILE* f = std::fopen((dir_ + "/turnserver.log").c_str(), "r")) {
      char buffer[4096];
      for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) text.append(buffer, n);
      std::fclose(f);
    }
    return text;
  }

  std::uint16_t port = 0, tlsPort = 0;

 private:
  // Ready when a UDP Binding request is answered and the TLS port accepts a TCP connection.
  bool waitReady(Duration limit) {
    auto sock = net::UdpSocket::bind(server(0));
    if (!sock || pid_ <= 0) return false;
    SeededRandom r(1);
    Bytes req;
    const Timestamp end = net::now() + limit;
    bool udp = false;
    while (net::now() < end) {
      if (!udp) {
        stun::MessageBuilder(req, stun::Method::Binding, stun::Class::Request, stun::randomTransactionId(r));
        sock->sendTo(server(port), req);
        int fd = sock->fd();
        udp = net::wait({&fd, 1}, net::now() + 100ms) && !sock->recvBatch().empty();
        continue;
      }
      auto tcp = net::StreamClient::connect(server(tlsPort), {});
      if (tcp) {
        std::vector<int> none, w = {tcp->fd()};
        (void)net::wait(none, w, net::now() + 100ms);
        if (tcp->service() && tcp->established()) return true;
      }
      usleep(50'000);
    }
    return false;
  }

  [[nodiscard]] SocketAddress server(std::uint16_t p) const { return *SocketAddress::parse(host_, p); }

  std::string host_, binary_, dir_, error_;
  pid_t pid_ = -1;
};

}  // namespace rtcpeer::ice::test
