// Two rtcpeer PeerConnections with the relay-only policy connect through Debian's coturn over UDP, TCP and TLS
// (turn:, turn:?transport=tcp, turns:) and exchange data-channel messages both ways; every candidate they signal is
// a relay candidate. A wrong TURN password makes the connection fail cleanly. Loopback only, in a private
// loopback-only network namespace when run as root.
#include <gtest/gtest.h>

#include <cstdlib>

#include "unit/ice/coturn.hpp"
#include "unit/peer/harness.hpp"

namespace rtcpeer {
namespace {

using ice::test::Coturn;

class CoturnPeers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (ice::test::enterLoopbackNamespace())
      std::printf("[ info     ] running in a private loopback-only network namespace\n");
    else
      std::printf("[ info     ] not root (or unshare refused): using 127.0.0.1 of the host's namespace\n");
  }
  void SetUp() override {
    server_ = std::make_unique<Coturn>();
    // A machine without coturn skips, except under CI=true: CI must run these (scripts/deps.sh installs coturn).
    const char* ci = std::getenv("CI");
    if (server_->error().find("not installed") != std::string::npos && !(ci && std::string(ci) == "true"))
      GTEST_SKIP() << server_->error();
    ASSERT_TRUE(server_->error().empty()) << server_->error();
    // turns: verifies coturn's certificate against the default store; OpenSSL reads SSL_CERT_FILE for it.
    setenv("SSL_CERT_FILE", server_->caFile().c_str(), 1);
  }
  void TearDown() override { unsetenv("SSL_CERT_FILE"); }

  Configuration config(const std::string& url, const char* password = Coturn::kPassword) {
    Configuration c = test::loopbackConfig();
    c.iceServers = {{{url}, Coturn::kUser, password}};
    c.relayOnly = true;
    return c;
  }

  void connectThrough(const std::string& url) {
    test::PeerPair p(config(url), config(url));
    std::vector<std::string> signalled;
    for (auto [self, other] : {std::pair{&p.a, &p.b}, std::pair{&p.b, &p.a}}) {
      self->onIceCandidateCreated([&, other = other](const std::string& mid, int index, const std::string& line) {
        if (!line.empty()) signalled.push_back(line);
        p.check(other->addIceCandidate(mid, index, line), *other, "addIceCandidate");
      });
    }
    auto local = p.a.createDataChannel("relay");
    ASSERT_NE(local, nullptr);
    ASSERT_TRUE(p.connect()) << url;
    ASSERT_TRUE(p.runUntil([&] { return !p.receivedByB.empty() && local->readyState() == ReadyState::Open; }));
    EXPECT_TRUE(p.errors.empty()) << p.errors.front();
    ASSERT_GE(signalled.size(), 2u);
    for (const auto& line : signalled) EXPECT_NE(line.find(" typ relay raddr "), std::string::npos) << line;

    auto remote = p.receivedByB[0];
    constexpr int kCount = 50;
    std::vector<std::uint8_t> message(10'000);
    for (int i = 0; i < kCount; ++i) {
      message[0] = static_cast<std::uint8_t>(i);
      ASSERT_EQ(local->putPacket(message), Error::Ok) << local->lastError();
      ASSERT_EQ(remote->putPacket(message), Error::Ok) << remote->lastError();
    }
    ASSERT_TRUE(p.runUntil([&] {
      return local->availablePacketCount() >= kCount && remote->availablePacketCount() >= kCount;
    })) << local->availablePacketCount() << " / " << remote->availablePacketCount();
    std::vector<std::uint8_t> got;
    for (int i = 0; i < kCount; ++i) {
      ASSERT_EQ(remote->getPacket(got), Error::Ok);
      ASSERT_EQ(got.size(), message.size());
      EXPECT_EQ(got[0], static_cast<std::uint8_t>(i));  // reliable and ordered through the relay
    }
    p.a.close();
    p.b.close();
  }

  std::unique_ptr<Coturn> server_;
};

TEST_F(CoturnPeers, RelayOnlyOverUdp) { connectThrough("turn:127.0.0.1:" + std::to_string(server_->port)); }
TEST_F(CoturnPeers, RelayOnlyOverTcp) {
  connectThrough("turn:127.0.0.1:" + std::to_string(server_->port) + "?transport=tcp");
}
TEST_F(CoturnPeers, RelayOnlyOverTls) { connectThrough("turns:127.0.0.1:" + std::to_string(server_->tlsPort)); }

TEST_F(CoturnPeers, WrongPasswordFailsCleanly) {
  const std::string url = "turn:127.0.0.1:" + std::to_string(server_->port);
  const Configuration c = config(url, "wrong");  // connectTimeout stays 30 s: the failure must come before it
  test::PeerPair p(c, c);
  auto local = p.a.createDataChannel("x");
  ASSERT_NE(local, nullptr);
  ASSERT_EQ(p.a.createOffer(), Error::Ok);
  ASSERT_TRUE(p.runUntil([&] { return p.a.connectionState() == ConnectionState::Failed; },
                         std::chrono::seconds(5)));
  EXPECT_NE(p.b.connectionState(), ConnectionState::Connected);
  EXPECT_NE(local->readyState(), ReadyState::Open);
}

TEST(RelayPolicy, JsonIceTransportPolicy) {
  Configuration c;
  std::string why;
  ASSERT_EQ(Configuration::fromJson(R"({"iceServers":[{"urls":"turn:127.0.0.1:3478","username":"u","credential":"p"}],
                                       "iceTransportPolicy":"relay"})",
                                    c, &why),
            Error::Ok)
      << why;
  EXPECT_TRUE(c.relayOnly);
  ASSERT_EQ(Configuration::fromJson(R"({"iceTransportPolicy":"all"})", c, &why), Error::Ok) << why;
  EXPECT_FALSE(c.relayOnly);
  EXPECT_EQ(Configuration::fromJson(R"({"iceTransportPolicy":"none"})", c, &why), Error::InvalidParameter);
  EXPECT_NE(why.find("iceTransportPolicy"), std::string::npos) << why;
  EXPECT_EQ(Configuration::fromJson(R"({"iceTransportPolicy":1})", c, &why), Error::InvalidParameter);
}

}  // namespace
}  // namespace rtcpeer
