// SignalingClient::setMultiplayerPeer: a lobby of the real signaling server (on its own thread, as a separate
// process would be) becomes a MultiplayerPeer mesh, or a server with relayed clients, with one call per player.
#include <gtest/gtest.h>

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it (GCC 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <set>
#include <thread>

#include "rtcpeer/rtcpeer.hpp"
#include "signaling/client.hpp"
#include "signaling/server.hpp"

namespace rtcpeer::test {
namespace {

struct ServerThread {
  boost::asio::io_context io;
  signaling::Server server;
  std::thread thread;
  static signaling::ServerOptions options() {
    signaling::ServerOptions o;
    o.port = 0;
    return o;
  }
  ServerThread() : server(io, options()) {
    EXPECT_TRUE(server.start().ok());
    thread = std::thread([this] { io.run(); });
  }
  ~ServerThread() {
    boost::asio::post(io, [this] { server.stop(); });
    thread.join();
  }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(server.port()); }
};

struct Player {
  std::unique_ptr<signaling::SignalingClient> client;
  MultiplayerPeer mp;
  std::set<int> connected;
  std::vector<std::pair<int, std::string>> got;

  Player(const std::string& url, const std::string& lobby, bool mesh) {
    signaling::ClientOptions o;
    o.url = url;
    o.lobby = lobby;
    o.mesh = mesh;
    o.rtc.interfaces = {"127.0.0.1"};
    client = std::make_unique<signaling::SignalingClient>(o);
    client->setMultiplayerPeer(&mp, {TransferMode::Reliable});
    mp.onPeerConnected([this](int id) { connected.insert(id); });
    mp.onPeerDisconnected([this](int id) { connected.erase(id); });
  }
  void frame() {
    client->poll();
    mp.poll();
    std::vector<std::uint8_t> buf;
    while (mp.availablePacketCount() > 0) {
      const int from = mp.packetPeer();
      mp.getPacket(buf);
      got.emplace_back(from, std::string(buf.begin(), buf.end()));
    }
  }
};

struct Lobby {
  ServerThread server;
  std::vector<std::unique_ptr<Player>> players;

  bool run(const std::function<bool()>& done) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < end) {
      for (auto& p : players) p->frame();
      if (done()) return true;
      players[0]->client->wait(std::chrono::milliseconds(1));
    }
    return false;
  }
  void fill(bool mesh, int count) {
    players.push_back(std::make_unique<Player>(server.url(), "", mesh));
    ASSERT_TRUE(run([&] { return !players[0]->client->lobby().empty(); })) << players[0]->client->lastError();
    for (int i = 1; i < count; ++i)
      players.push_back(std::make_unique<Player>(server.url(), players[0]->client->lobby(), mesh));
  }
  std::set<int> idsBut(const Player& self) {
    std::set<int> s;
    for (auto& p : players)
      if (p.get() != &self) s.insert(p->client->id());
    return s;
  }
};

TEST(SignalingHandOff, MeshLobbyBecomesAMultiplayerMesh) {
  Lobby l;
  l.fill(true, 4);
  ASSERT_TRUE(l.run([&] {
    for (auto& p : l.players)
      if (p->client->id() == 0 || p->connected != l.idsBut(*p)) return false;
    return true;
  }));
  for (auto& p : l.players) {
    EXPECT_EQ(p->mp.uniqueId(), p->client->id());
    EXPECT_FALSE(p->mp.isServerRelaySupported());
    EXPECT_EQ(p->mp.peers().size(), 3u);
    EXPECT_EQ(p->mp.peers().begin()->second.channels.size(), 4u);  // 3 reserved + the configured one
  }
  Player& last = *l.players.back();
  last.mp.setTransferChannel(1);
  ASSERT_EQ(last.mp.putPacket("hi all"), Error::Ok);
  ASSERT_TRUE(l.run([&] {
    for (auto& p : l.players)
      if (p.get() != &last && p->got.empty()) return false;
    return true;
  }));
  for (auto& p : l.players) {
    if (p.get() != &last) {
      EXPECT_EQ(p->got.front(), std::make_pair(last.client->id(), std::string("hi all")));
    }
  }
}

TEST(SignalingHandOff, ClientServerLobbyRelaysThroughTheHost) {
  Lobby l;
  l.fill(false, 3);
  ASSERT_TRUE(l.run([&] {
    for (auto& p : l.players)
      if (p->client->id() == 0 || p->connected != l.idsBut(*p)) return false;
    return true;
  }));
  EXPECT_TRUE(l.players[0]->mp.isServer());
  Player& a = *l.players[1];
  Player& b = *l.players[2];
  EXPECT_EQ(a.mp.peers().size(), 1u);  // only the host: b is reached through it
  a.mp.setTargetPeer(b.client->id());
  ASSERT_EQ(a.mp.putPacket("via host"), Error::Ok);
  ASSERT_TRUE(l.run([&] { return !b.got.empty(); }));
  EXPECT_EQ(b.got.front(), std::make_pair(a.client->id(), std::string("via host")));
  EXPECT_TRUE(l.players[0]->got.empty());
}

}  // namespace
}  // namespace rtcpeer::test
