// Configuration::udpMux end to end: server PeerConnections sharing one UDP port in one process, each connected to
// a client PeerConnection with ordinary sockets, all echoing, in a private loopback-only network namespace. The
// loop is a server's: one epoll set holding every connection's fileDescriptor(), woken by it or by the earliest
// nextDeadline().
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "net/udp.hpp"
#include "net/udp_mux.hpp"
#include "unit/ice/coturn.hpp"
#include "unit/net/netns.hpp"
#include "unit/peer/harness.hpp"

namespace rtcpeer::test {
namespace {

constexpr std::uint16_t kPort = 40100;

// A connection that cannot connect fails within 10 s (the whole suite connects in about 2 s under ASan), so a
// broken mux fails the test rather than the ctest timeout.
Configuration clientConfig() {
  Configuration c = loopbackConfig();
  c.connectTimeout = std::chrono::seconds(10);
  return c;
}

Configuration serverConfig() {
  Configuration c = clientConfig();
  c.udpMux = true;
  c.portRangeBegin = c.portRangeEnd = kPort;
  return c;
}

struct Link {
  PeerConnection client, server;
  std::shared_ptr<DataChannel> channel;  // the client's
  std::vector<std::shared_ptr<DataChannel>> served;
  std::vector<std::string> serverCandidates, errors, echoes;
  std::string serverSdp;
  bool hideClientCandidates = false;  // the server then learns the client as peer-reflexive

  explicit Link(bool hide = false, const Configuration& clientConfig = test::clientConfig(),
                const Configuration& serverConfig = test::serverConfig())
      : hideClientCandidates(hide) {
    check(client.initialize(clientConfig), client, "client initialize");
    check(server.initialize(serverConfig), server, "server initialize");
    client.onSessionDescriptionCreated([this](const std::string& type, const std::string& sdp) {
      check(client.setLocalDescription(type, sdp), client, "client setLocalDescription");
      check(server.setRemoteDescription(type, sdp), server, "server setRemoteDescription");
    });
    server.onSessionDescriptionCreated([this](const std::string& type, const std::string& sdp) {
      serverSdp = sdp;
      check(server.setLocalDescription(type, sdp), server, "server setLocalDescription");
      check(client.setRemoteDescription(type, sdp), client, "client setRemoteDescription");
    });
    client.onIceCandidateCreated([this](const std::string& mid, int index, const std::string& name) {
      if (!hideClientCandidates || name.empty()) check(server.addIceCandidate(mid, index, name), server, "server add");
    });
    server.onIceCandidateCreated([this](const std::string& mid, int index, const std::string& name) {
      if (!name.empty()) serverCandidates.push_back(name);
      check(client.addIceCandidate(mid, index, name), client, "client add");
    });
    server.onDataChannelReceived([this](std::shared_ptr<DataChannel> c) { served.push_back(std::move(c)); });
  }
  void start() {
    channel = client.createDataChannel("echo");
    check(client.createOffer(), client, "createOffer");
  }
  void check(Error e, PeerConnection& pc, const char* what) {
    if (e != Error::Ok) errors.push_back(std::string(what) + ": " + errorName(e) + ": " + pc.lastError());
  }
  bool connected() const {
    return client.connectionState() == ConnectionState::Connected &&
           server.connectionState() == ConnectionState::Connected && channel &&
           channel->readyState() == ReadyState::Open;
  }
  // The server echoes every message; the client collects the echoes.
  void service() {
    std::vector<std::uint8_t> buffer;
    for (auto& c : served)
      while (c->availablePacketCount() > 0 && c->getPacket(buffer) == Error::Ok) (void)c->putPacket(buffer);
    while (channel && channel->availablePacketCount() > 0 && channel->getPacket(buffer) == Error::Ok)
      echoes.emplace_back(buffer.begin(), buffer.end());
  }
};

class UdpMuxPeers : public ::testing::Test {
 protected:
  void SetUp() override { RTCPEER_REQUIRE_LOOPBACK_NAMESPACE(); }

  std::vector<std::unique_ptr<Link>> links;

  Link& add(bool hide = false, const Configuration& clientConfig = test::clientConfig(),
           const Configuration& serverConfig = test::serverConfig()) {
    links.push_back(std::make_unique<Link>(hide, clientConfig, serverConfig));
    return *links.back();
  }

  // One server loop iteration over every live connection; then sleep in one epoll set until a connection's
  // descriptor is readable or the earliest deadline passes. Ends when `done` holds (or, failing, after a bound
  // on iterations that only a hang reaches).
  bool run(const std::function<bool()>& done) {
    auto poller = net::Poller::create();
    EXPECT_TRUE(poller);
    for (int i = 0; i < 200000; ++i) {
      auto deadline = std::chrono::steady_clock::time_point::max();
      for (auto& l : links) {
        for (PeerConnection* pc : {&l->client, &l->server}) {
          if (pc->connectionState() == ConnectionState::Closed) continue;
          EXPECT_EQ(pc->poll(), Error::Ok) << pc->lastError();
          (void)poller->watch(pc->fileDescriptor());
          deadline = std::min(deadline, pc->nextDeadline());
        }
        l->service();
        EXPECT_TRUE(l->errors.empty()) << l->errors.front();
        if (!l->errors.empty()) return false;
        for (PeerConnection* pc : {&l->client, &l->server}) {
          if (pc->connectionState() != ConnectionState::Failed) continue;
          ADD_FAILURE() << "a connection failed: " << pc->lastError();
          return false;
        }
      }
      if (done()) return true;
      Timestamp t = kNever;
      if (deadline != std::chrono::steady_clock::time_point::max())
        t = Timestamp(std::chrono::duration_cast<Duration>(deadline.time_since_epoch()));
      const int fd = poller->fd();
      EXPECT_TRUE(net::wait(std::span(&fd, 1), t));
    }
    return false;
  }

  bool allConnected(std::size_t from = 0) {
    for (std::size_t i = from; i < links.size(); ++i)
      if (!links[i]->connected()) return false;
    return true;
  }

  // Every link in [from, end) sends `message` and gets it back.
  void echoAll(const std::string& message, std::size_t from = 0) {
    for (std::size_t i = from; i < links.size(); ++i) {
      links[i]->echoes.clear();
      ASSERT_EQ(links[i]->channel->putPacket(message + std::to_string(i)), Error::Ok);
    }
    ASSERT_TRUE(run([&] {
      for (std::size_t i = from; i < links.size(); ++i)
        if (links[i]->echoes.empty()) return false;
      return true;
    }));
    for (std::size_t i = from; i < links.size(); ++i) EXPECT_EQ(links[i]->echoes.at(0), message + std::to_string(i));
  }
};

TEST_F(UdpMuxPeers, TwoConnectionsOnOnePort) {
  add().start();
  add().start();
  ASSERT_TRUE(run([&] { return allConnected(); }));
  for (auto& l : links) {
    ASSERT_FALSE(l->serverCandidates.empty());
    for (const auto& c : l->serverCandidates) EXPECT_NE(c.find(" 40100 typ host"), std::string::npos) << c;
    EXPECT_EQ(l->server.stats().local.port, kPort);
  }
  EXPECT_NE(links[0]->client.stats().local.port, links[1]->client.stats().local.port);
  echoAll("hello ");
  echoAll("again ");
}

TEST_F(UdpMuxPeers, FiftyConnectionsEcho) {
  for (int i = 0; i < 50; ++i) add().start();
  ASSERT_TRUE(run([&] { return allConnected(); }));
  echoAll("ping ");
  for (auto& l : links) EXPECT_EQ(l->server.stats().local.port, kPort);
}

TEST_F(UdpMuxPeers, PeerReflexiveClients) {
  add(true).start();
  add(true).start();
  add(false).start();
  ASSERT_TRUE(run([&] { return allConnected(); }));
  EXPECT_EQ(links[0]->server.stats().remote.type, "prflx");
  EXPECT_EQ(links[1]->server.stats().remote.type, "prflx");
  EXPECT_EQ(links[2]->server.stats().remote.type, "host");
  echoAll("prflx ");
}

TEST_F(UdpMuxPeers, AClosingConnectionLeavesTheOthersAndTheLastClosesThePort) {
  for (int i = 0; i < 3; ++i) add().start();
  ASSERT_TRUE(run([&] { return allConnected(); }));
  // The first server watches the shared socket; it goes, the others carry on.
  links[0]->server.close();
  ASSERT_TRUE(run([&] { return links[0]->client.connectionState() == ConnectionState::Closed; }));
  echoAll("still ", 1);
  EXPECT_FALSE(net::UdpSocket::bind(*SocketAddress::parse("127.0.0.1", kPort)));
  for (auto& l : links) l->server.close();
  EXPECT_TRUE(net::UdpSocket::bind(*SocketAddress::parse("127.0.0.1", kPort)));
}

TEST_F(UdpMuxPeers, ARestartedConnectionRejoinsThePort) {
  add().start();
  add().start();
  ASSERT_TRUE(run([&] { return allConnected(); }));
  // initialize() again: a new session registers again (new ufrag) while the other connection stays up.
  links[0]->client.close();
  ASSERT_EQ(links[0]->server.initialize(serverConfig()), Error::Ok);
  ASSERT_EQ(links[0]->client.initialize(clientConfig()), Error::Ok);
  links[0]->served.clear();
  links[0]->start();
  ASSERT_TRUE(run([&] { return allConnected(); }));
  echoAll("restarted ");
}

// A client that comes back from the same address and port to a new server connection, while the old server
// connection (closed by the peer, but not yet by the application) still holds its registration.
TEST_F(UdpMuxPeers, AClientReconnectingFromTheSameAddress) {
  Configuration fixed = clientConfig();
  fixed.portRangeBegin = fixed.portRangeEnd = kPort + 1;
  add(false, fixed).start();
  ASSERT_TRUE(run([&] { return allConnected(); }));
  links[0]->client.close();
  ASSERT_TRUE(run([&] { return links[0]->server.connectionState() == ConnectionState::Closed; }));
  add(false, fixed).start();
  ASSERT_TRUE(run([&] { return allConnected(1); }));
  EXPECT_EQ(links[1]->client.stats().local.port, kPort + 1);
  echoAll("back ", 1);
}

// The usual server: ICE lite on the shared port (it only answers the clients' checks).
TEST_F(UdpMuxPeers, IceLiteServers) {
  Configuration lite = serverConfig();
  lite.iceLite = true;
  for (int i = 0; i < 3; ++i) add(i == 1, clientConfig(), lite).start();
  ASSERT_TRUE(run([&] { return allConnected(); }));
  echoAll("lite ");
}

TEST_F(UdpMuxPeers, AnotherThreadGetsAnError) {
  add().start();
  ASSERT_TRUE(run([&] { return allConnected(); }));
  Error pollError = Error::Ok, bindError = Error::Ok;
  std::string pollReason, bindReason;
  std::thread([&] {
    pollError = links[0]->server.poll();
    pollReason = links[0]->server.lastError();
    PeerConnection other;
    ASSERT_EQ(other.initialize(serverConfig()), Error::Ok);
    auto c = other.createDataChannel("x");
    other.onSessionDescriptionCreated([&](const std::string& type, const std::string& sdp) {
      bindError = other.setLocalDescription(type, sdp);
      bindReason = other.lastError();
    });
    ASSERT_EQ(other.createOffer(), Error::Ok);
    (void)other.poll();
  }).join();
  EXPECT_EQ(pollError, Error::Failed);
  EXPECT_NE(pollReason.find("another thread"), std::string::npos) << pollReason;
  EXPECT_NE(bindError, Error::Ok);
  EXPECT_NE(bindReason.find("another thread"), std::string::npos) << bindReason;
  echoAll("unharmed ");
}

// Relayed paths: the servers on the shared port allocate on one TURN server, each from a private socket (one
// TURN allocation per client 5-tuple, RFC 8656 2.2), and the clients reach them only through their relays.
TEST_F(UdpMuxPeers, RelayedConnectionsThroughOneTurnServer) {
  ice::test::Coturn turn;
  const char* ci = std::getenv("CI");
  if (turn.error().find("not installed") != std::string::npos && !(ci && std::string(ci) == "true"))
    GTEST_SKIP() << turn.error();
  ASSERT_TRUE(turn.error().empty()) << turn.error();
  Configuration relayed = serverConfig();
  relayed.iceServers = {{{"turn:127.0.0.1:" + std::to_string(turn.port)}, ice::test::Coturn::kUser,
                         ice::test::Coturn::kPassword}};
  relayed.relayOnly = true;
  for (int i = 0; i < 3; ++i) add(false, clientConfig(), relayed).start();
  ASSERT_TRUE(run([&] { return allConnected(); })) << turn.log();
  for (auto& l : links) {
    for (const auto& c : l->serverCandidates) EXPECT_NE(c.find(" typ relay "), std::string::npos) << c;
    EXPECT_EQ(l->server.stats().local.type, "relay");
  }
  echoAll("relayed ");
}

// What a server operator reads in stats(): the shared port, its connections, and the datagrams it dropped, for
// this connection (its queue was full: it was not polled while others' polls read its traffic) and for nobody.
TEST_F(UdpMuxPeers, StatsShowTheSharedPortAndItsDrops) {
  add().start();
  add().start();
  ASSERT_TRUE(run([&] { return allConnected(); }));
  const auto before = links[0]->server.stats();
  EXPECT_TRUE(before.udpMux);
  EXPECT_EQ(before.udpMuxConnections, 2u);
  EXPECT_EQ(before.udpMuxDroppedFull, 0u);
  EXPECT_FALSE(links[0]->client.stats().udpMux);
  EXPECT_EQ(links[0]->client.stats().udpMuxConnections, 0u);

  // A stranger sends Binding requests naming the second server's ufrag (routed to its queue, which only its own
  // poll empties) and plain datagrams nobody claims; only the first server is polled meanwhile.
  const auto at = links[1]->serverSdp.find("a=ice-ufrag:");
  ASSERT_NE(at, std::string::npos);
  const std::string ufrag = links[1]->serverSdp.substr(at + 12, links[1]->serverSdp.find_first_of("\r\n", at) - at - 12);
  auto stranger = net::UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0)).value();
  const auto port = *SocketAddress::parse("127.0.0.1", kPort);
  std::string user = ufrag + ":x";
  Bytes request = {0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                   0x00, 0x06, 0, static_cast<std::uint8_t>(user.size())};
  request.insert(request.end(), user.begin(), user.end());
  while (request.size() % 4) request.push_back(0);
  request[3] = static_cast<std::uint8_t>(request.size() - 20);
  const std::size_t kRequests = net::LocalSocket::kMaxQueued + 44, kGarbage = 5;
  for (std::size_t i = 0; i < kRequests; ++i) {
    request[19] = static_cast<std::uint8_t>(i);
    ASSERT_TRUE(stranger.sendTo(port, request));
    if (i % 50 == 49 || i + 1 == kRequests) {
      ASSERT_EQ(links[0]->server.poll(), Error::Ok);  // reads the port
    }
  }
  const Bytes garbage = {0x17, 0xfe, 0xfd, 0, 0};
  for (std::size_t i = 0; i < kGarbage; ++i) ASSERT_TRUE(stranger.sendTo(port, garbage));
  ASSERT_EQ(links[0]->server.poll(), Error::Ok);
  const auto first = links[0]->server.stats(), second = links[1]->server.stats();
  EXPECT_EQ(first.udpMuxDroppedFull, 0u);
  EXPECT_GE(second.udpMuxDroppedFull, 44u);  // and its client's own traffic, should a consent check fall in
  EXPECT_EQ(first.udpMuxDroppedUnknown - before.udpMuxDroppedUnknown, kGarbage);
  EXPECT_EQ(second.udpMuxDroppedUnknown, first.udpMuxDroppedUnknown) << "the port's figure, the same for all";
  echoAll("after ");  // the unauthenticated requests were dropped by ICE; both connections carry on
  links[1]->server.close();
  EXPECT_FALSE(links[1]->server.stats().udpMux);
  EXPECT_EQ(links[0]->server.stats().udpMuxConnections, 1u);
}

TEST(UdpMuxConfig, NeedsOneFixedPort) {
  Configuration c = loopbackConfig();
  c.udpMux = true;
  std::string why;
  EXPECT_EQ(c.validate(&why), Error::InvalidParameter);
  EXPECT_NE(why.find("udpMux"), std::string::npos) << why;
  c.portRangeBegin = 5000;
  c.portRangeEnd = 5001;
  EXPECT_EQ(c.validate(), Error::InvalidParameter);
  PeerConnection pc;
  EXPECT_EQ(pc.initialize(c), Error::InvalidParameter);
  EXPECT_NE(pc.lastError().find("udpMux"), std::string::npos) << pc.lastError();
  c.portRangeEnd = 5000;
  EXPECT_EQ(c.validate(), Error::Ok);

  Configuration parsed;
  ASSERT_EQ(Configuration::fromJson(R"({"udpMux":true,"portRangeBegin":7000,"portRangeEnd":7000})", parsed), Error::Ok);
  EXPECT_TRUE(parsed.udpMux);
  EXPECT_EQ(Configuration::fromJson(R"({"udpMux":1,"portRangeBegin":7000,"portRangeEnd":7000})", parsed, &why),
            Error::InvalidParameter);
  EXPECT_EQ(Configuration::fromJson(R"({"udpMux":true})", parsed, &why), Error::InvalidParameter);
}

}  // namespace
}  // namespace rtcpeer::test
