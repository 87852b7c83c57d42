// ICE servers given by host name, resolved for real: the test process runs in its own loopback-only network
// namespace with its own /etc/hosts (stun.hosts.test) and a dnsmasq on 127.0.0.1:53 (turn.rtcpeer.test, the
// name coturn's test certificate carries), so names come both from the hosts file and over DNS, and nothing
// reaches real DNS. The resolver (c-ares in src/net) is checked on its own, then two PeerConnections connect
// relay-only through coturn named by URL (UDP, and TLS with the certificate checked against the name), and an
// unresolvable TURN name fails the connection with the resolver's reason.
#include <gtest/gtest.h>

#include <cstdlib>

#include "net/resolver.hpp"
#include "unit/ice/coturn.hpp"
#include "unit/net/names.hpp"
#include "unit/peer/harness.hpp"

namespace rtcpeer {
namespace {

using ice::test::Coturn;

std::shared_ptr<net::Poller> makePoller() {
  auto p = net::Poller::create();
  EXPECT_TRUE(p) << p.reason();
  return std::make_shared<net::Poller>(std::move(*p));
}

std::unique_ptr<net::test::PrivateNames> names;

class Names : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    names = std::make_unique<net::test::PrivateNames>(
        std::vector<std::string>{"127.0.0.1 stun.hosts.test"},
        std::vector<std::pair<std::string, std::string>>{{Coturn::kServerName, "127.0.0.1"},
                                                         {"dual.rtcpeer.test", "127.0.0.2"},
                                                         {"dual.rtcpeer.test", "::1"}});
  }
  static void TearDownTestSuite() { names.reset(); }
  void SetUp() override {
    if (!names->error().empty()) {
      // Without root or dnsmasq this skips, except under CI=true (scripts/deps.sh installs dnsmasq-base).
      const char* ci = std::getenv("CI");
      if (ci && std::string(ci) == "true") FAIL() << names->error();
      GTEST_SKIP() << names->error();
    }
  }

  // Drives a resolver the way a PeerConnection does: sleep in the epoll set until its descriptor or deadline.
  static std::vector<net::Resolver::Answer> resolveAll(const std::vector<std::string>& hosts) {
    auto poller = makePoller();
    auto resolver = net::Resolver::create(poller);
    EXPECT_TRUE(resolver) << resolver.reason();
    if (!resolver) return {};
    auto& r = **resolver;
    for (const auto& h : hosts) r.resolve(h, 3478);
    std::vector<net::Resolver::Answer> answers(hosts.size());
    std::size_t got = 0;
    for (int round = 0; got < hosts.size() && round < 1000; ++round) {
      const int fd = poller->fd();
      EXPECT_TRUE(net::wait(std::span(&fd, 1), r.nextDeadline()));
      r.process();
      while (auto a = r.poll()) {
        answers[a->id - 1] = std::move(*a);
        ++got;
      }
    }
    EXPECT_EQ(got, hosts.size());
    EXPECT_EQ(r.pending(), 0u);
    return answers;
  }

  static Configuration relayConfig(std::vector<std::string> urls) {
    Configuration c = test::loopbackConfig();
    c.iceServers = {{std::move(urls), Coturn::kUser, Coturn::kPassword}};
    c.relayOnly = true;
    return c;
  }
};

TEST_F(Names, ResolverReadsHostsFileAndAsksDns) {
  auto answers = resolveAll({"stun.hosts.test", Coturn::kServerName, "dual.rtcpeer.test", "nothing.invalid",
                             "127.0.0.1"});
  ASSERT_EQ(answers.size(), 5u);
  ASSERT_EQ(answers[0].addresses.size(), 1u) << answers[0].error;
  EXPECT_EQ(answers[0].addresses[0].toString(), "127.0.0.1:3478");
  ASSERT_EQ(answers[1].addresses.size(), 1u) << answers[1].error;
  EXPECT_EQ(answers[1].addresses[0].toString(), "127.0.0.1:3478");
  // A and AAAA, IPv4 first.
  ASSERT_EQ(answers[2].addresses.size(), 2u) << answers[2].error;
  EXPECT_EQ(answers[2].addresses[0].toString(), "127.0.0.2:3478");
  EXPECT_EQ(answers[2].addresses[1].toString(), "[::1]:3478");
  EXPECT_TRUE(answers[3].addresses.empty());
  EXPECT_NE(answers[3].error.find("cannot resolve 'nothing.invalid'"), std::string::npos) << answers[3].error;
  EXPECT_NE(answers[3].error.find("Domain name not found"), std::string::npos) << answers[3].error;  // NXDOMAIN
  ASSERT_EQ(answers[4].addresses.size(), 1u);
  // The DNS names went over DNS (dnsmasq saw them), the hosts-file name did not.
  const std::string log = names->log();
  EXPECT_NE(log.find(Coturn::kServerName), std::string::npos) << log;
  EXPECT_NE(log.find("dual.rtcpeer.test"), std::string::npos) << log;
  EXPECT_EQ(log.find("stun.hosts.test"), std::string::npos) << log;
}

TEST_F(Names, ResolveDoesNotBlock) {
  auto poller = makePoller();
  auto resolver = net::Resolver::create(poller);
  ASSERT_TRUE(resolver) << resolver.reason();
  (*resolver)->resolve(Coturn::kServerName, 3478);
  // The query is on the wire, its answer not read yet: nothing is handed out until process() reads it.
  EXPECT_FALSE((*resolver)->poll());
  EXPECT_EQ((*resolver)->pending(), 1u);
  EXPECT_NE((*resolver)->nextDeadline(), kNever);  // c-ares' retransmission timer
}

class NamedTurn : public Names {
 protected:
  void SetUp() override {
    Names::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    server_ = std::make_unique<Coturn>();
    const char* ci = std::getenv("CI");
    if (server_->error().find("not installed") != std::string::npos && !(ci && std::string(ci) == "true"))
      GTEST_SKIP() << server_->error();
    ASSERT_TRUE(server_->error().empty()) << server_->error();
    setenv("SSL_CERT_FILE", server_->caFile().c_str(), 1);
  }
  void TearDown() override { unsetenv("SSL_CERT_FILE"); }

  void connectThrough(const std::vector<std::string>& urls) {
    test::PeerPair p(relayConfig(urls), relayConfig(urls));
    std::vector<std::string> signalled;
    for (auto [self, other] : {std::pair{&p.a, &p.b}, std::pair{&p.b, &p.a}}) {
      self->onIceCandidateCreated([&, other = other](const std::string& mid, int index, const std::string& line) {
        if (!line.empty()) signalled.push_back(line);
        p.check(other->addIceCandidate(mid, index, line), *other, "addIceCandidate");
      });
    }
    auto local = p.a.createDataChannel("named");
    ASSERT_NE(local, nullptr);
    ASSERT_TRUE(p.connect()) << p.a.lastError() << " / " << p.b.lastError();
    ASSERT_TRUE(p.runUntil([&] { return !p.receivedByB.empty() && local->readyState() == ReadyState::Open; }));
    EXPECT_TRUE(p.errors.empty()) << p.errors.front();
    ASSERT_GE(signalled.size(), 2u);
    for (const auto& line : signalled) EXPECT_NE(line.find(" typ relay raddr "), std::string::npos) << line;
    const std::uint8_t hello[] = {1, 2, 3};
    ASSERT_EQ(local->putPacket(hello), Error::Ok);
    ASSERT_TRUE(p.runUntil([&] { return p.receivedByB[0]->availablePacketCount() > 0; }));
  }

  std::unique_ptr<Coturn> server_;
};

// The README's example, with names of the test namespace: a STUN server from the hosts file, TURN over DNS.
TEST_F(NamedTurn, RelayOnlyThroughTurnNamedOverDns) {
  const std::string port = std::to_string(server_->port);
  connectThrough({"stun:stun.hosts.test:" + port, "turn:" + std::string(Coturn::kServerName) + ":" + port});
}

// turns: by name: the TLS certificate is checked against the name in the URL.
TEST_F(NamedTurn, RelayOnlyThroughTurnsNamedOverDns) {
  connectThrough({"turns:" + std::string(Coturn::kServerName) + ":" + std::to_string(server_->tlsPort)});
}

TEST_F(NamedTurn, UnresolvableTurnNameFailsWithTheReason) {
  // connectTimeout stays 30 s and there is nothing else to wait for: the failure comes from the resolver's answer.
  const Configuration c = relayConfig({"turn:nothing.invalid:" + std::to_string(server_->port)});
  test::PeerPair p(c, c);
  auto local = p.a.createDataChannel("x");
  ASSERT_NE(local, nullptr);
  ASSERT_EQ(p.a.createOffer(), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return p.a.connectionState() == ConnectionState::Failed; }));
  // The reason reaches the application through the channels the failure closed.
  const std::string& why = local->lastError();
  EXPECT_NE(why.find("turn:nothing.invalid"), std::string::npos) << why;
  EXPECT_NE(why.find("cannot resolve 'nothing.invalid'"), std::string::npos) << why;
  EXPECT_EQ(why.find("connectTimeout"), std::string::npos) << why;
}

}  // namespace
}  // namespace rtcpeer
