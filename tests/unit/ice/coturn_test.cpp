// ICE agents with relay-only policy connecting through Debian's coturn over UDP, TCP and TLS (loopback only,
// inside a loopback-only network namespace when run as root), moving data both ways, with coturn on 127.0.0.1
// and on ::1 (IPv6 relayed addresses: REQUESTED-ADDRESS-FAMILY, RFC 8656 7.1); and the failures: wrong
// password, unreachable server, a certificate that does not verify.
#include <gtest/gtest.h>

#include <cstdlib>

#include "unit/ice/coturn.hpp"
#include "unit/ice/turn_driver.hpp"

namespace rtcpeer::ice {
namespace {

using test::Coturn;
using test::TurnAgent;

bool connected(const Agent& a) { return a.state() == State::Connected || a.state() == State::Completed; }

class CoturnTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (test::enterLoopbackNamespace())
      std::printf("[ info     ] running in a private loopback-only network namespace\n");
    else
      std::printf("[ info     ] not root (or unshare refused): using 127.0.0.1 of the host's namespace\n");
  }
  static bool ci() {
    const char* ci = std::getenv("CI");
    return ci && std::string(ci) == "true";
  }
  void SetUp() override {
    server_ = std::make_unique<Coturn>(host_);
    // A machine without coturn skips, except under CI=true: CI must run these (scripts/deps.sh installs coturn).
    if (server_->error().find("not installed") != std::string::npos && !ci()) GTEST_SKIP() << server_->error();
    ASSERT_TRUE(server_->error().empty()) << server_->error();
  }
  SocketAddress loopback() const { return *SocketAddress::parse(host_, 0); }

  AgentConfig config(Role role, TurnTransport transport, const char* password = Coturn::kPassword) {
    AgentConfig c;
    c.role = role;
    c.relayOnly = true;
    c.turnServers = {{server_->address(transport), transport, Coturn::kUser, password}};
    return c;
  }
  net::StreamOptions tls() {
    net::StreamOptions o;
    o.caFile = server_->caFile();
    o.serverName = Coturn::kServerName;
    return o;
  }

  void connectAndExchange(TurnTransport transport) {
    CryptoRandom random;
    TurnAgent a(config(Role::Controlling, transport), random, tls());
    TurnAgent b(config(Role::Controlled, transport), random, tls());
    ASSERT_TRUE(a.bind(loopback()));
    ASSERT_TRUE(b.bind(loopback()));
    a.start(net::now());
    b.start(net::now());
    auto gathered = [&] {
      return a.agent.gatheringState() == GatheringState::Complete &&
             b.agent.gatheringState() == GatheringState::Complete;
    };
    ASSERT_TRUE(test::runTurn({&a, &b}, gathered, 10s));
    for (TurnAgent* x : {&a, &b}) {
      ASSERT_EQ(x->agent.localCandidates().size(), 1u) << x->agent.relayResults()[0].error;
      EXPECT_EQ(x->agent.localCandidates()[0].type, CandidateType::Relay);
      EXPECT_EQ(x->agent.localCandidates()[0].address.ipString(), host_);  // coturn's --relay-ip
      EXPECT_NE(x->agent.localCandidates()[0].toSdp().find(" typ relay raddr " + std::string(host_) + " rport "),
                std::string::npos)
          << x->agent.localCandidates()[0].toSdp();
    }
    const Timestamp now = net::now();
    b.agent.setRemoteCredentials(a.agent.localCredentials().ufrag, a.agent.localCredentials().pwd, now);
    a.agent.setRemoteCredentials(b.agent.localCredentials().ufrag, b.agent.localCredentials().pwd, now);
    for (const auto& c : a.agent.localCandidates()) ASSERT_TRUE(b.agent.addRemoteCandidate(*parseCandidate(c.toSdp()), now));
    for (const auto& c : b.agent.localCandidates()) ASSERT_TRUE(a.agent.addRemoteCandidate(*parseCandidate(c.toSdp()), now));
    a.flush();
    b.flush();
    ASSERT_TRUE(test::runTurn({&a, &b}, [&] { return connected(a.agent) && connected(b.agent); }, 10s));
    EXPECT_EQ(a.agent.selectedPair()->localType, CandidateType::Relay);
    EXPECT_EQ(b.agent.selectedPair()->remoteType, CandidateType::Relay);

    // 200 datagrams each way (DTLS-looking first byte), through coturn.
    Bytes data(1000, 0x5A);
    data[0] = 23;
    constexpr std::size_t kCount = 200;
    for (std::size_t i = 0; i < kCount; ++i) {
      data[1] = static_cast<std::uint8_t>(i);
      a.send(data, net::now());
      b.send(data, net::now());
      if (i % 20 == 0) test::runTurn({&a, &b}, [] { return false; }, 20ms);  // let both sides drain
    }
    // Over UDP a few early datagrams can be lost while the channel binding is in flight; streams lose nothing.
    const std::size_t want = transport == TurnTransport::Udp ? kCount * 9 / 10 : kCount;
    ASSERT_TRUE(test::runTurn({&a, &b}, [&] { return a.received.size() >= want && b.received.size() >= want; }, 5s))
        << a.received.size() << " / " << b.received.size();
    for (TurnAgent* x : {&a, &b}) {
      for (std::size_t i = 0; i < x->received.size(); ++i) {
        ASSERT_EQ(x->received[i].size(), data.size());
        // A stream delivers all in order; UDP may reorder Send-indication and ChannelData datagrams.
        if (transport != TurnTransport::Udp) {
          EXPECT_EQ(x->received[i][1], static_cast<std::uint8_t>(i));
        }
      }
    }
    a.agent.close();
    b.agent.close();
    a.flush();  // the deallocations
    b.flush();
    test::runTurn({&a, &b}, [] { return false; }, 50ms);
  }

  std::unique_ptr<Coturn> server_;
  const char* host_ = "127.0.0.1";
};

TEST_F(CoturnTest, RelayOnlyOverUdp) { connectAndExchange(TurnTransport::Udp); }
TEST_F(CoturnTest, RelayOnlyOverTcp) { connectAndExchange(TurnTransport::Tcp); }
TEST_F(CoturnTest, RelayOnlyOverTls) { connectAndExchange(TurnTransport::Tls); }

// coturn listening and relaying on ::1 only: the allocation must ask for an IPv6 relayed address (without
// REQUESTED-ADDRESS-FAMILY coturn would look for an IPv4 relay address and answer 440).
class CoturnIpv6Test : public CoturnTest {
 protected:
  void SetUp() override {
    host_ = "::1";
    if (!test::ipv6LoopbackAvailable()) {
      // CI must run it (its namespace has ::1 on lo); elsewhere IPv6 may be disabled.
      if (ci()) FAIL() << "::1 is not available, and CI must run the IPv6 TURN tests";
      GTEST_SKIP() << "::1 is not available here (IPv6 disabled?)";
    }
    CoturnTest::SetUp();
  }
};

TEST_F(CoturnIpv6Test, RelayOnlyOverUdp) { connectAndExchange(TurnTransport::Udp); }
TEST_F(CoturnIpv6Test, RelayOnlyOverTcp) { connectAndExchange(TurnTransport::Tcp); }

void expectFailure(TurnAgent& a, const std::string& reason, const char* host = "127.0.0.1") {
  ASSERT_TRUE(a.bind(*SocketAddress::parse(host, 0)));
  a.start(net::now());
  ASSERT_TRUE(test::runTurn({&a}, [&] { return a.agent.gatheringState() == GatheringState::Complete; }, 15s))
      << "gathering must complete";
  EXPECT_TRUE(a.agent.localCandidates().empty());
  const auto r = a.agent.relayResults();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_NE(r[0].error.find(reason), std::string::npos) << r[0].error;
}

TEST_F(CoturnTest, WrongPasswordFailsCleanly) {
  CryptoRandom random;
  for (auto transport : {TurnTransport::Udp, TurnTransport::Tcp}) {
    TurnAgent a(config(Role::Controlling, transport, "wrong"), random, tls());
    expectFailure(a, "rejected the username/credential (401");
  }
}

TEST_F(CoturnTest, UnverifiableCertificateFailsCleanly) {
  CryptoRandom random;
  net::StreamOptions o = tls();
  o.caFile.clear();  // the system store does not know the test certificate
  TurnAgent a(config(Role::Controlling, TurnTransport::Tls), random, o);
  expectFailure(a, "certificate");
}

TEST_F(CoturnTest, WrongServerNameFailsCleanly) {
  CryptoRandom random;
  net::StreamOptions o = tls();
  o.serverName = "other.example";
  TurnAgent a(config(Role::Controlling, TurnTransport::Tls), random, o);
  expectFailure(a, "certificate");
}

TEST_F(CoturnIpv6Test, WrongPasswordFailsCleanly) {
  CryptoRandom random;
  TurnAgent a(config(Role::Controlling, TurnTransport::Udp, "wrong"), random, tls());
  expectFailure(a, "rejected the username/credential (401", host_);
}

TEST_F(CoturnTest, UnreachableTcpServerFailsCleanly) {
  CryptoRandom random;
  AgentConfig c = config(Role::Controlling, TurnTransport::Tcp);
  c.turnServers[0].address.setPort(test::freeLoopbackPort());  // nobody listens there
  TurnAgent a(c, random);
  expectFailure(a, "refused");
}

}  // namespace
}  // namespace rtcpeer::ice
