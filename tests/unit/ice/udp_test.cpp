// ICE over real UDP sockets on loopback (127.0.0.1 / ::1 only), and server-reflexive gathering from a real STUN
// server: Debian's coturn started on 127.0.0.1.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "stun/stun.hpp"
#include "unit/ice/udp_driver.hpp"

namespace rtcpeer::ice {
namespace {

using test::runUdp;
using test::UdpAgent;

SocketAddress addr(const char* ip, std::uint16_t port = 0) { return *SocketAddress::parse(ip, port); }

bool connected(const Agent& a) { return a.state() == State::Connected || a.state() == State::Completed; }

void connectOver(const char* ip) {
  CryptoRandom random;
  AgentConfig ca, cb;
  ca.role = Role::Controlling;
  cb.role = Role::Controlled;
  UdpAgent a(ca, random), b(cb, random);
  auto st = a.bind({addr(ip)});
  if (!st) GTEST_SKIP() << "cannot bind " << ip << ": " << st.reason();
  ASSERT_TRUE(b.bind({addr(ip)}));
  const Timestamp now = net::now();
  a.agent.startGathering(a.localAddresses(), now);
  b.agent.startGathering(b.localAddresses(), now);
  ASSERT_EQ(a.agent.gatheringState(), GatheringState::Complete);
  b.agent.setRemoteCredentials(a.agent.localCredentials().ufrag, a.agent.localCredentials().pwd, now);
  a.agent.setRemoteCredentials(b.agent.localCredentials().ufrag, b.agent.localCredentials().pwd, now);
  for (const auto& c : a.agent.localCandidates()) {
    // Through the SDP text form, as a peer would receive it.
    auto parsed = parseCandidate("a=" + c.toSdp());
    ASSERT_TRUE(parsed) << parsed.reason();
    ASSERT_TRUE(b.agent.addRemoteCandidate(*parsed, now));
  }
  for (const auto& c : b.agent.localCandidates()) ASSERT_TRUE(a.agent.addRemoteCandidate(c, now));
  ASSERT_TRUE(runUdp({&a, &b}, [&] { return connected(a.agent) && connected(b.agent); }, 5s));
  auto sa = a.agent.selectedPair(), sb = b.agent.selectedPair();
  ASSERT_TRUE(sa && sb);
  EXPECT_EQ(sa->local, a.sockets[0].localAddress());
  EXPECT_EQ(sa->remote, b.sockets[0].localAddress());
  EXPECT_EQ(sb->remote, a.sockets[0].localAddress());
  EXPECT_EQ(a.agent.stats().authFailures + b.agent.stats().authFailures, 0u);
}

TEST(IceUdp, ConnectsOverIpv4Loopback) { connectOver("127.0.0.1"); }
TEST(IceUdp, ConnectsOverIpv6Loopback) { connectOver("::1"); }

// ---- coturn ----------------------------------------------------------------------------------------------------

std::string findTurnserver() {
  for (const char* p : {"/usr/bin/turnserver", "/usr/sbin/turnserver", "/usr/local/bin/turnserver"})
    if (access(p, X_OK) == 0) return p;
  return {};
}

std::uint16_t freeLoopbackPort() {
  auto s = net::UdpSocket::bind(addr("127.0.0.1"));
  return s ? s->localAddress().port() : 0;
}

/// A coturn child process in STUN-only mode on 127.0.0.1:port; stopped (SIGTERM to its own pid) on destruction.
class Coturn {
 public:
  Coturn(const std::string& binary, std::uint16_t port) : port_(port) {
    const std::string portArg = "--listening-port=" + std::to_string(port);
    const std::string pidArg = "--pidfile=/tmp/rtcpeer-coturn-" + std::to_string(getpid()) + ".pid";
    pid_ = fork();
    if (pid_ == 0) {
      const int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, STDOUT_FILENO);
      dup2(devnull, STDERR_FILENO);
      execl(binary.c_str(), binary.c_str(), "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
            portArg.c_str(), "--stun-only", "--no-tls", "--no-dtls", "--no-tcp", "--no-cli", "--log-file=stdout",
            "--simple-log", pidArg.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Coturn() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  /// Sends Binding requests until one is answered (coturn needs a moment to start).
  bool waitReady(Duration limit) {
    auto sock = net::UdpSocket::bind(addr("127.0.0.1"));
    if (!sock || pid_ <= 0) return false;
    SeededRandom r(1);
    Bytes req;
    const Timestamp end = net::now() + limit;
    while (net::now() < end) {
      stun::MessageBuilder(req, stun::Method::Binding, stun::Class::Request, stun::randomTransactionId(r));
      sock->sendTo(addr("127.0.0.1", port_), req);
      int fd = sock->fd();
      if (net::wait({&fd, 1}, net::now() + 100ms) && !sock->recvBatch().empty()) return true;
    }
    return false;
  }

 private:
  std::uint16_t port_;
  pid_t pid_ = -1;
};

TEST(IceUdp, GathersServerReflexiveFromCoturn) {
  const auto binary = findTurnserver();
  if (binary.empty()) GTEST_SKIP() << "turnserver (coturn) is not installed";
  const std::uint16_t port = freeLoopbackPort();
  ASSERT_NE(port, 0);
  Coturn server(binary, port);
  ASSERT_TRUE(server.waitReady(10s)) << "coturn did not answer on 127.0.0.1:" << port;

  CryptoRandom random;
  AgentConfig c;
  c.stunServers = {addr("127.0.0.1", port)};
  UdpAgent a(c, random);
  ASSERT_TRUE(a.bind({addr("127.0.0.1")}));
  a.agent.startGathering(a.localAddresses(), net::now());
  EXPECT_EQ(a.agent.gatheringState(), GatheringState::Gathering);
  ASSERT_TRUE(runUdp({&a}, [&] { return a.agent.gatheringState() == GatheringState::Complete; }, 5s));
  ASSERT_EQ(a.agent.serverReflexiveResults().size(), 1u);
  const auto& r = a.agent.serverReflexiveResults()[0];
  ASSERT_TRUE(r.mapped) << "no XOR-MAPPED-ADDRESS from coturn";
  // No NAT on loopback: the reflexive address is the socket itself, so it is redundant with the host candidate.
  EXPECT_EQ(*r.mapped, a.sockets[0].localAddress());
  EXPECT_EQ(a.agent.localCandidates().size(), 1u);
}

TEST(IceUdp, UnreachableStunServerStillCompletesGathering) {
  CryptoRandom random;
  AgentConfig c;
  c.stunServers = {addr("127.0.0.1", freeLoopbackPort())};  // nobody listens there
  c.gatheringTimeout = 1s;
  UdpAgent a(c, random);
  ASSERT_TRUE(a.bind({addr("127.0.0.1")}));
  const Timestamp start = net::now();
  a.agent.startGathering(a.localAddresses(), start);
  ASSERT_TRUE(runUdp({&a}, [&] { return a.agent.gatheringState() == GatheringState::Complete; }, 5s));
  EXPECT_GE(net::now() - start, 900ms);
  EXPECT_FALSE(a.agent.serverReflexiveResults()[0].mapped);
  EXPECT_EQ(a.agent.localCandidates().size(), 1u);  // the host candidate
}

}  // namespace
}  // namespace rtcpeer::ice
