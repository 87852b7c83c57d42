// SignalingClient end to end: two clients meet in a lobby of a real server (on its own thread, as a separate
// process would be) and get wired PeerConnections; then the host seals the lobby.
#include "signaling/client.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "signaling/server.hpp"
#include "ws_client.hpp"

namespace rtcpeer::signaling::test {
namespace {

ServerOptions testServerOptions(const TestCertificate* tls = nullptr) {
  ServerOptions o;
  o.port = 0;
  o.limits.sealCloseDelay = std::chrono::milliseconds(300);
  if (tls) {
    o.certificateFile = tls->cert;
    o.privateKeyFile = tls->key;
  }
  return o;
}

struct ServerThread {
  net::io_context io;
  Server server;
  std::thread thread;
  explicit ServerThread(ServerOptions options = testServerOptions()) : server(io, std::move(options)) {
    EXPECT_TRUE(server.start().ok());
    thread = std::thread([this] { io.run(); });
  }
  ~ServerThread() {
    net::post(io, [this] { server.stop(); });
    thread.join();
  }
  std::string url(const std::string& scheme = "ws", const std::string& host = "127.0.0.1") const {
    return scheme + "://" + host + ":" + std::to_string(server.port());
  }
};

struct Peer {
  std::unique_ptr<SignalingClient> client;
  std::shared_ptr<DataChannel> channel;
  int remote = 0;
  int closeCode = 0;
  bool sealed = false;

  explicit Peer(ClientOptions options) : client(std::make_unique<SignalingClient>(std::move(options))) {
    client->onPeerConnected([this](int id, PeerConnection& pc) {
      remote = id;
      DataChannelInit init;
      init.negotiated = true;
      init.id = 1;
      channel = pc.createDataChannel("test", init);
    });
    client->onSealed([this] { sealed = true; });
    client->onClosed([this](int code, const std::string&) { closeCode = code; });
  }
};

bool runBoth(Peer& a, Peer& b, const std::function<bool()>& done, std::chrono::seconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    a.client->poll();
    b.client->poll();
    if (done()) return true;
    a.client->wait(std::chrono::milliseconds(1));
  }
  return false;
}

TEST(SignalingClient, TwoClientsGetAWiredPeerConnectionAndSeal) {
  ServerThread server;
  ClientOptions options;
  options.url = server.url();
  options.rtc.interfaces = {"127.0.0.1"};
  Peer host(options);
  ASSERT_TRUE(runBoth(host, host, [&] { return host.client->state() == SignalingClient::State::Joined; }))
      << host.client->lastError();
  EXPECT_EQ(host.client->id(), 1);
  EXPECT_TRUE(host.client->mesh());
  options.lobby = host.client->lobby();
  Peer guest(options);

  ASSERT_TRUE(runBoth(host, guest, [&] {
    return host.channel && guest.channel && host.channel->readyState() == ReadyState::Open &&
           guest.channel->readyState() == ReadyState::Open;
  })) << host.client->lastError() << " / " << guest.client->lastError();
  EXPECT_EQ(host.remote, guest.client->id());
  EXPECT_EQ(guest.remote, 1);
  EXPECT_GE(guest.client->id(), 2);
  EXPECT_EQ(host.client->peerIds(), std::vector<int>{guest.client->id()});

  ASSERT_EQ(guest.channel->putPacket(std::string_view("hello host")), Error::Ok);
  std::vector<std::uint8_t> got;
  ASSERT_TRUE(runBoth(host, guest, [&] { return host.channel->getPacket(got) == Error::Ok; }));
  EXPECT_EQ(std::string(got.begin(), got.end()), "hello host");

  // Seal: both hear it, the server closes both sockets normally, the WebRTC link stays up.
  host.client->seal();
  ASSERT_TRUE(runBoth(host, guest, [&] { return host.closeCode != 0 && guest.closeCode != 0; }));
  EXPECT_TRUE(host.sealed);
  EXPECT_TRUE(guest.sealed);
  EXPECT_EQ(host.closeCode, 1000);
  EXPECT_EQ(guest.closeCode, 1000);
  ASSERT_EQ(host.channel->putPacket(std::string_view("still here")), Error::Ok);
  ASSERT_TRUE(runBoth(host, guest, [&] { return guest.channel->getPacket(got) == Error::Ok; }));
  EXPECT_EQ(std::string(got.begin(), got.end()), "still here");
}

TEST(SignalingClient, SecureWebSocketsTrustOnlyAVerifiedCertificate) {
  TestCertificate tls;  // for IP:127.0.0.1 only
  if (!tls.ok) GTEST_SKIP() << "openssl command not available";
  ServerThread server(testServerOptions(&tls));
  ClientOptions options;
  options.url = server.url("wss");
  options.caFile = tls.cert;
  options.rtc.interfaces = {"127.0.0.1"};
  Peer host(options);
  ASSERT_TRUE(runBoth(host, host, [&] { return host.client->state() == SignalingClient::State::Joined; }))
      << host.client->lastError();
  options.lobby = host.client->lobby();
  Peer guest(options);
  // The offer, answer and candidates are relayed over wss:// both ways.
  ASSERT_TRUE(runBoth(host, guest, [&] {
    return host.channel && guest.channel && host.channel->readyState() == ReadyState::Open &&
           guest.channel->readyState() == ReadyState::Open;
  })) << host.client->lastError() << " / " << guest.client->lastError();

  auto expectRefused = [&](ClientOptions o, const std::string& why) {
    Peer refused(std::move(o));
    ASSERT_TRUE(runBoth(refused, refused, [&] { return refused.client->state() == SignalingClient::State::Closed; }));
    EXPECT_EQ(refused.closeCode, 1006);
    EXPECT_NE(refused.client->lastError().find("is not trusted: " + why), std::string::npos)
        << refused.client->lastError();
  };
  ClientOptions untrusted = options;  // the system's CA store does not know the test certificate
  untrusted.caFile.clear();
  expectRefused(untrusted, "self");  // "self-signed certificate" (OpenSSL 3) or "self signed ..." (1.1)
  ClientOptions otherName = options;  // trusted, but issued for 127.0.0.1, not "localhost"
  otherName.url = server.url("wss", "localhost");
  expectRefused(otherName, "hostname mismatch");

  // Verification off: encrypted, unauthenticated, and it works.
  ClientOptions insecure = untrusted;
  insecure.verifyCertificate = false;
  insecure.lobby.clear();
  Peer third(insecure);
  ASSERT_TRUE(runBoth(third, third, [&] { return third.client->state() == SignalingClient::State::Joined; }))
      << third.client->lastError();

  ClientOptions badCa = options;
  badCa.caFile = "/nonexistent/ca.pem";
  Peer noCa(badCa);
  EXPECT_EQ(noCa.client->state(), SignalingClient::State::Closed);
  EXPECT_NE(noCa.client->lastError().find("cannot load CA certificates /nonexistent/ca.pem"), std::string::npos)
      << noCa.client->lastError();
}

TEST(SignalingClient, ReportsAnUnknownLobbyAndAnUnreachableServer) {
  ServerThread server;
  ClientOptions options;
  options.url = server.url();
  options.lobby = "NoSuchLobby";
  Peer lost(options);
  ASSERT_TRUE(runBoth(lost, lost, [&] { return lost.client->state() == SignalingClient::State::Closed; }));
  EXPECT_EQ(lost.closeCode, 4000);
  EXPECT_NE(lost.client->lastError().find("Lobby does not exists"), std::string::npos) << lost.client->lastError();

  options.url = "ws://127.0.0.1:1";
  Peer nowhere(options);
  ASSERT_TRUE(runBoth(nowhere, nowhere, [&] { return nowhere.client->state() == SignalingClient::State::Closed; }));
  EXPECT_EQ(nowhere.closeCode, 1006);
  options.url = "http://example.invalid";
  Peer bad(options);
  EXPECT_EQ(bad.client->state(), SignalingClient::State::Closed);
  EXPECT_NE(bad.client->lastError().find("ws://"), std::string::npos);
}

}  // namespace
}  // namespace rtcpeer::signaling::test
