// MultiplayerPeer in server/client mode: a server and three clients in one process over loopback; clients reach
// each other only through the server's relay (Godot 4's SceneMultiplayer frames), learn about each other from its
// ADD_PEER / DEL_PEER, and a client whose server never connects fails. Also the grace for a transient
// Disconnected.
#include <gtest/gtest.h>

#include <stdexcept>

#include "multiplayer/protocol.hpp"
#include "unit/multiplayer/harness.hpp"

namespace rtcpeer::test {
namespace {

const std::vector<TransferMode> kExtras = {TransferMode::Reliable, TransferMode::Unreliable};

struct ServerClient : ::testing::Test {
  Cluster c;
  Node* server = nullptr;

  Node& addClient(int id) {
    Node& n = c.add(id);
    EXPECT_EQ(n.mp.createClient(id, kExtras), Error::Ok) << n.mp.lastError();
    EXPECT_EQ(n.mp.connectionStatus(), ConnectionStatus::Connecting);
    c.link(n, *server);  // the client offers, as the larger id does in Godot's demo
    return n;
  }
  void build() {
    server = &c.add(1);
    ASSERT_EQ(server->mp.createServer(kExtras), Error::Ok);
    for (int id : {2, 3, 4}) addClient(id);
    ASSERT_TRUE(c.runUntil([&] { return c.allConnected({1, 2, 3, 4}); }));
    EXPECT_TRUE(c.errors.empty()) << c.errors.front();
  }
  Node& node(int id) {
    for (auto& n : c.nodes)
      if (n->id == id) return *n;
    throw std::runtime_error("no node");
  }
  /// Sends `data` from `from` to `target` then a reliable "fence" broadcast from the same sender, and waits
  /// until every other node got the fence: whatever a packet on the reliable channel reached has arrived by then.
  void sendFenced(Node& from, int target, const std::string& data, int channel = 0,
                  TransferMode mode = TransferMode::Reliable) {
    from.mp.setTargetPeer(target);
    from.mp.setTransferChannel(channel);
    from.mp.setTransferMode(mode);
    ASSERT_EQ(from.mp.putPacket(data), Error::Ok) << from.mp.lastError();
    from.mp.setTargetPeer(0);
    from.mp.setTransferChannel(0);
    from.mp.setTransferMode(TransferMode::Reliable);
    const std::string fence = "fence:" + data;
    ASSERT_EQ(from.mp.putPacket(fence), Error::Ok);
    ASSERT_TRUE(c.runUntil([&] {
      for (auto& n : c.nodes)
        if (n.get() != &from && n->mp.connectionStatus() == ConnectionStatus::Connected && !n->got(fence))
          return false;
      return true;
    })) << data;
  }
};

TEST_F(ServerClient, ClientsLearnEachOtherThroughTheServer) {
  build();
  EXPECT_EQ(server->joined.size(), 3u);
  for (int id : {2, 3, 4}) {
    Node& n = node(id);
    EXPECT_EQ(n.mp.connectionStatus(), ConnectionStatus::Connected);
    EXPECT_TRUE(n.mp.isServerRelaySupported());
    EXPECT_FALSE(n.mp.isServer());
    ASSERT_EQ(n.mp.peers().size(), 1u);  // one WebRTC connection: to the server
    EXPECT_TRUE(n.mp.hasPeer(1));
    EXPECT_EQ(n.joined.front(), 1);  // the server first, then the relayed peers
  }
}

TEST_F(ServerClient, RelayedPacketsCarryTheRealSenderChannelAndMode) {
  build();
  Node& two = node(2);
  struct Case {
    int channel;
    TransferMode mode, packetMode;
  };
  const Case cases[] = {{0, TransferMode::Reliable, TransferMode::Reliable},
                        {0, TransferMode::UnreliableOrdered, TransferMode::UnreliableOrdered},
                        {0, TransferMode::Unreliable, TransferMode::Unreliable},
                        {1, TransferMode::Unreliable, TransferMode::Reliable},
                        {2, TransferMode::Reliable, TransferMode::Unreliable}};
  for (const auto& k : cases) {
    const std::string msg = "to3-ch" + std::to_string(k.channel) + "m" + std::to_string(static_cast<int>(k.mode));
    sendFenced(two, 3, msg, k.channel, k.mode);
    // The fence rides channel 0; a packet on another channel may still be on its way.
    ASSERT_TRUE(c.runUntil([&] { return node(3).got(msg); })) << msg;
    const Received* r = node(3).find(msg);
    ASSERT_NE(r, nullptr) << msg;
    EXPECT_EQ(r->peer, 2);
    EXPECT_EQ(r->channel, k.channel);
    EXPECT_EQ(r->mode, k.packetMode);
    EXPECT_FALSE(node(4).got(msg));
    EXPECT_FALSE(server->got(msg));
  }
}

TEST_F(ServerClient, TargetsThroughTheRelay) {
  build();
  Node& two = node(2);
  sendFenced(two, 0, "all");
  sendFenced(two, -3, "allbut3");
  sendFenced(two, -1, "allbutserver");
  sendFenced(two, 1, "server");
  EXPECT_TRUE(server->got("all"));
  EXPECT_TRUE(server->got("allbut3"));
  EXPECT_FALSE(server->got("allbutserver"));
  EXPECT_TRUE(server->got("server"));
  EXPECT_EQ(server->find("all")->peer, 2);
  for (int id : {3, 4}) {
    Node& n = node(id);
    EXPECT_TRUE(n.got("all")) << id;
    EXPECT_EQ(n.got("allbut3"), id != 3) << id;
    EXPECT_TRUE(n.got("allbutserver")) << id;
    EXPECT_FALSE(n.got("server")) << id;
    EXPECT_EQ(n.find("all")->peer, 2);
  }
  EXPECT_FALSE(two.got("all"));  // never echoed to the sender
  // The server reaches clients directly; its packets come from peer 1.
  sendFenced(*server, 4, "direct");
  EXPECT_EQ(node(4).find("direct")->peer, 1);
  EXPECT_FALSE(node(3).got("direct"));
  // A client cannot target a peer the server never announced.
  two.mp.setTargetPeer(77);
  EXPECT_EQ(two.mp.putPacket("x"), Error::InvalidParameter);
}

TEST_F(ServerClient, ClientsJoiningAndLeavingAreAnnounced) {
  build();
  Node& five = addClient(5);
  ASSERT_TRUE(c.runUntil([&] { return c.allConnected({1, 2, 3, 4, 5}); }));
  for (int id : {2, 3, 4}) EXPECT_EQ(node(id).joined.back(), 5);
  EXPECT_EQ(five.connected, (std::set<int>{1, 2, 3, 4}));

  node(4).mp.close();  // the others hear it through the server's DEL_PEER
  ASSERT_TRUE(c.runUntil([&] {
    return !server->connected.count(4) && !node(2).connected.count(4) && !node(3).connected.count(4) &&
           !five.connected.count(4);
  }));
  EXPECT_EQ(node(2).left.back(), 4);

  // The server goes: every client loses it and, with it, every relayed peer, and is Disconnected.
  server->mp.close();
  ASSERT_TRUE(c.runUntil([&] {
    for (int id : {2, 3, 5})
      if (node(id).mp.connectionStatus() != ConnectionStatus::Disconnected) return false;
    return true;
  }));
  for (int id : {2, 3, 5}) {
    EXPECT_TRUE(node(id).connected.empty()) << id;
    EXPECT_EQ(node(id).left.back(), 1) << id;
  }
}

TEST(ServerClientFailure, ClientWhoseServerNeverConnectsFails) {
  // Godot leaves such a client in CONNECTING forever. The offer and answer go through, but no candidate does
  // except one for a port nobody listens on, so ICE never succeeds and the connection times out.
  Configuration cfg = loopback();
  cfg.connectTimeout = std::chrono::milliseconds(1000);
  auto clientPc = std::make_shared<PeerConnection>();
  auto serverPc = std::make_shared<PeerConnection>();
  ASSERT_EQ(clientPc->initialize(cfg), Error::Ok);
  ASSERT_EQ(serverPc->initialize(loopback()), Error::Ok);
  clientPc->onSessionDescriptionCreated([&](const std::string& type, const std::string& sdp) {
    clientPc->setLocalDescription(type, sdp);
    serverPc->setRemoteDescription(type, sdp);
  });
  serverPc->onSessionDescriptionCreated([&](const std::string& type, const std::string& sdp) {
    serverPc->setLocalDescription(type, sdp);
    clientPc->setRemoteDescription(type, sdp);
    clientPc->addIceCandidate("0", 0, "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host");
  });
  MultiplayerPeer client, server;
  ASSERT_EQ(client.createClient(2), Error::Ok);
  ASSERT_EQ(server.createServer(), Error::Ok);
  std::vector<int> disconnected;
  client.onPeerDisconnected([&](int id) { disconnected.push_back(id); });
  ASSERT_EQ(client.addPeer(clientPc, 1), Error::Ok);
  ASSERT_EQ(server.addPeer(serverPc, 2), Error::Ok);
  ASSERT_EQ(clientPc->createOffer(), Error::Ok);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (client.connectionStatus() == ConnectionStatus::Connecting && std::chrono::steady_clock::now() < end) {
    client.poll();
    server.poll();
    clientPc->wait(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(client.connectionStatus(), ConnectionStatus::Disconnected);
  EXPECT_FALSE(client.hasPeer(1));
  EXPECT_NE(client.lastError().find("server"), std::string::npos) << client.lastError();
  EXPECT_TRUE(disconnected.empty());  // it never connected, so no peer left
}

TEST(Grace, TransientDisconnectedKeepsThePeer) {
  // Godot drops a peer the moment its connection reports Disconnected. Here a peer that falls silent (its side
  // is not polled) goes Disconnected, stays a peer, and carries packets again once it wakes up.
  Cluster c;
  Configuration quick = loopback();
  quick.disconnectedTimeout = std::chrono::milliseconds(300);
  Node& a = c.add(1);
  Node& b = c.add(2);
  ASSERT_EQ(a.mp.createMesh(1), Error::Ok);
  ASSERT_EQ(b.mp.createMesh(2), Error::Ok);
  c.link(a, b, quick, loopback());
  ASSERT_TRUE(c.runUntil([&] { return c.allConnected({1, 2}); }));
  auto pcA = a.mp.peers().at(2).connection;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (pcA->connectionState() != ConnectionState::Disconnected && std::chrono::steady_clock::now() < end) {
    a.mp.poll();  // only a: b is silent
    pcA->wait(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(pcA->connectionState(), ConnectionState::Disconnected);
  a.mp.poll();
  EXPECT_TRUE(a.mp.hasPeer(2));
  EXPECT_TRUE(a.left.empty());
  ASSERT_EQ(b.mp.putPacket("back"), Error::Ok);
  ASSERT_TRUE(c.runUntil([&] { return a.got("back") && pcA->connectionState() == ConnectionState::Connected; }));
  EXPECT_TRUE(a.left.empty());
  EXPECT_TRUE(b.left.empty());
}

TEST(RelayFrames, GodotWireFormat) {
  // SceneMultiplayer: [NETWORK_COMMAND_SYS=7][SYS_COMMAND_RELAY=3][int32 little-endian peer][payload].
  Bytes f;
  const Bytes payload = {0xAA, 0xBB};
  multiplayer::writeSystem(f, multiplayer::SysCommand::Relay, -3, payload);
  EXPECT_EQ(f, (Bytes{7, 3, 0xFD, 0xFF, 0xFF, 0xFF, 0xAA, 0xBB}));
  auto m = multiplayer::parseSystem(f);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->command, multiplayer::SysCommand::Relay);
  EXPECT_EQ(m->peer, -3);
  EXPECT_EQ(Bytes(m->payload.begin(), m->payload.end()), payload);
  multiplayer::writeSystem(f, multiplayer::SysCommand::AddPeer, 0x01020304);
  EXPECT_EQ(f, (Bytes{7, 1, 4, 3, 2, 1}));
  std::string why;
  EXPECT_FALSE(multiplayer::parseSystem(Bytes{7, 3, 1, 0, 0, 0}, &why));  // relay without payload
  EXPECT_FALSE(multiplayer::parseSystem(Bytes{7, 9, 1, 0, 0, 0}, &why));  // unknown command
  EXPECT_FALSE(multiplayer::parseSystem(Bytes{7, 1, 1}, &why));           // short
  EXPECT_FALSE(multiplayer::parseSystem(Bytes{3, 1, 1, 0, 0, 0}, &why));  // NETWORK_COMMAND_RAW
  EXPECT_TRUE(multiplayer::isSystemPacket(Bytes{0x17}));                  // flags in the high bits
}

}  // namespace
}  // namespace rtcpeer::test
