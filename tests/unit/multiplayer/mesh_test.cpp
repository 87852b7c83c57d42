// MultiplayerPeer in mesh mode: four peers in one process over loopback, Godot's channel layout, every transfer
// mode and extra channel, targets, peers joining and leaving, and the API's error cases.
#include <gtest/gtest.h>

#include "unit/multiplayer/harness.hpp"

namespace rtcpeer::test {
namespace {

const std::vector<TransferMode> kExtras = {TransferMode::Reliable, TransferMode::UnreliableOrdered,
                                           TransferMode::Unreliable};

struct Mesh : ::testing::Test {
  Cluster c;
  std::vector<int> ids = {1, 7, 42, 1000};

  void build(std::size_t count = 4) {
    for (std::size_t i = 0; i < count; ++i) {
      Node& n = c.add(ids[i]);
      ASSERT_EQ(n.mp.createMesh(n.id, kExtras), Error::Ok) << n.mp.lastError();
      EXPECT_EQ(n.mp.connectionStatus(), ConnectionStatus::Connected);
    }
    for (std::size_t i = 0; i < count; ++i)
      for (std::size_t j = i + 1; j < count; ++j) c.link(*c.nodes[i], *c.nodes[j]);
    std::vector<int> want(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(count));
    ASSERT_TRUE(c.runUntil([&] { return c.allConnected(want); }));
    EXPECT_TRUE(c.errors.empty()) << c.errors.front();
  }
};

TEST_F(Mesh, FourPeersConnectWithGodotsChannelLayout) {
  build();
  for (auto& n : c.nodes) {
    EXPECT_EQ(n->joined.size(), 3u);
    EXPECT_EQ(n->mp.uniqueId(), n->id);
    EXPECT_EQ(n->mp.isServer(), n->id == 1);  // Godot: is_server() is unique_id == 1, in a mesh too
    EXPECT_FALSE(n->mp.isServerRelaySupported());
    auto peers = n->mp.peers();
    ASSERT_EQ(peers.size(), 3u);
    for (auto& [id, info] : peers) {
      EXPECT_TRUE(info.connected);
      EXPECT_TRUE(n->mp.hasPeer(id));
      ASSERT_EQ(info.channels.size(), 6u);
      struct Want {
        const char* label;
        int id;
        bool ordered;
        int lifetime;
      };
      const int life = Cluster::kLifetime;
      const Want want[] = {{"reliable", 1, true, DataChannel::kUnset}, {"ordered", 2, true, life},
                           {"unreliable", 3, false, life},            {"4", 4, true, DataChannel::kUnset},
                           {"5", 5, true, life},                      {"6", 6, false, life}};
      for (std::size_t i = 0; i < 6; ++i) {
        const auto& ch = *info.channels[i];
        EXPECT_EQ(ch.label(), want[i].label);
        EXPECT_EQ(ch.id(), want[i].id);
        EXPECT_TRUE(ch.isNegotiated());
        EXPECT_EQ(ch.isOrdered(), want[i].ordered) << ch.label();
        // The point of the lifetime: Godot's "maxPacketLifetime" spelling made these reliable.
        EXPECT_EQ(ch.maxPacketLifeTime(), want[i].lifetime) << ch.label();
        EXPECT_EQ(ch.readyState(), ReadyState::Open);
      }
    }
  }
}

TEST_F(Mesh, EveryTransferModeAndExtraChannelReachesEveryPeer) {
  build();
  Node& from = *c.nodes[2];
  struct Case {
    int channel;
    TransferMode mode;        // what setTransferMode says
    TransferMode packetMode;  // what the receiver sees
  };
  const Case cases[] = {{0, TransferMode::Reliable, TransferMode::Reliable},
                        {0, TransferMode::UnreliableOrdered, TransferMode::UnreliableOrdered},
                        {0, TransferMode::Unreliable, TransferMode::Unreliable},
                        // extra channels keep their configured mode whatever transferMode says
                        {1, TransferMode::Unreliable, TransferMode::Reliable},
                        {2, TransferMode::Reliable, TransferMode::UnreliableOrdered},
                        {3, TransferMode::Reliable, TransferMode::Unreliable}};
  for (const auto& k : cases) {
    from.mp.setTransferChannel(k.channel);
    from.mp.setTransferMode(k.mode);
    const std::string msg = "ch" + std::to_string(k.channel) + "m" + std::to_string(static_cast<int>(k.mode));
    ASSERT_EQ(from.mp.putPacket(msg), Error::Ok) << from.mp.lastError();
  }
  ASSERT_TRUE(c.runUntil([&] {
    for (auto& n : c.nodes)
      if (n.get() != &from && n->inbox.size() < 6) return false;
    return true;
  }));
  for (auto& n : c.nodes) {
    if (n.get() == &from) {
      EXPECT_TRUE(n->inbox.empty());
      continue;
    }
    for (const auto& k : cases) {
      const std::string msg = "ch" + std::to_string(k.channel) + "m" + std::to_string(static_cast<int>(k.mode));
      const Received* r = n->find(msg);
      ASSERT_NE(r, nullptr) << msg << " at " << n->id;
      EXPECT_EQ(r->peer, from.id);
      EXPECT_EQ(r->channel, k.channel) << msg;
      EXPECT_EQ(r->mode, k.packetMode) << msg;
    }
  }
}

TEST_F(Mesh, TargetsOnePeerAllButOneAndBroadcast) {
  build();
  Node& from = *c.nodes[0];
  const int one = c.nodes[1]->id, excluded = c.nodes[3]->id;
  from.mp.setTargetPeer(one);
  EXPECT_EQ(from.mp.targetPeer(), one);
  ASSERT_EQ(from.mp.putPacket("only"), Error::Ok);
  from.mp.setTargetPeer(-excluded);
  ASSERT_EQ(from.mp.putPacket("allbut"), Error::Ok);
  from.mp.setTargetPeer(MultiplayerPeer::kTargetPeerBroadcast);
  ASSERT_EQ(from.mp.putPacket("fence"), Error::Ok);  // same ordered channel: arrives after the others
  ASSERT_TRUE(c.runUntil([&] {
    for (auto& n : c.nodes)
      if (n.get() != &from && !n->got("fence")) return false;
    return true;
  }));
  for (auto& n : c.nodes) {
    if (n.get() == &from) continue;
    EXPECT_EQ(n->got("only"), n->id == one) << n->id;
    EXPECT_EQ(n->got("allbut"), n->id != excluded) << n->id;
    EXPECT_EQ(n->inbox.size(), 1u + (n->id == one) + (n->id != excluded)) << n->id;
  }
  from.mp.setTargetPeer(123456);
  EXPECT_EQ(from.mp.putPacket("nobody"), Error::InvalidParameter);
}

TEST_F(Mesh, PeersJoinAndLeave) {
  ids = {2, 3, 4, 9};
  build(3);
  // A fourth peer joins the running mesh.
  Node& late = c.add(9);
  ASSERT_EQ(late.mp.createMesh(9, kExtras), Error::Ok);
  for (std::size_t i = 0; i < 3; ++i) c.link(*c.nodes[i], late);
  ASSERT_TRUE(c.runUntil([&] { return c.allConnected({2, 3, 4, 9}); }));
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(c.nodes[i]->joined.back(), 9);

  // disconnectPeer (not forced) closes the connection: both ends see the peer leave.
  Node& a = *c.nodes[0];
  Node& b = *c.nodes[1];
  a.mp.disconnectPeer(b.id);
  ASSERT_TRUE(c.runUntil([&] { return !a.connected.count(b.id) && !b.connected.count(a.id); }));
  EXPECT_FALSE(a.mp.hasPeer(b.id));
  EXPECT_FALSE(b.mp.hasPeer(a.id));

  // close() on the late peer: Godot notifies nobody (godotengine/godot#110442); here the others see it go.
  late.mp.close();
  EXPECT_EQ(late.mp.connectionStatus(), ConnectionStatus::Disconnected);
  EXPECT_EQ(late.mp.uniqueId(), 0);
  EXPECT_TRUE(late.mp.peers().empty());
  ASSERT_TRUE(c.runUntil([&] {
    for (std::size_t i = 0; i < 3; ++i)
      if (c.nodes[i]->connected.count(9)) return false;
    return true;
  }));
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(c.nodes[i]->left.back(), 9);
  EXPECT_EQ(late.mp.putPacket("x"), Error::Unconfigured);

  // removePeer: the signal fires in the next poll(), not inside the call.
  Node& d = *c.nodes[2];
  const std::size_t before = d.left.size();
  d.mp.removePeer(a.id);
  EXPECT_EQ(d.left.size(), before);
  EXPECT_FALSE(d.mp.hasPeer(a.id));
  d.mp.poll();
  ASSERT_EQ(d.left.size(), before + 1);
  EXPECT_EQ(d.left.back(), a.id);
  ASSERT_TRUE(c.runUntil([&] { return !a.connected.count(d.id); }));  // its connection was closed
}

// A peer that sends its last packets and closes at once (a game's "bye, then quit"): the packets its connection
// delivered come out of getPacket() before the peer is dropped, even when the close arrives in the same poll().
TEST_F(Mesh, PacketsDeliveredBeforeACloseAreNotLost) {
  build(2);
  Node& a = *c.nodes[0];
  Node& b = *c.nodes[1];
  a.mp.setTargetPeer(b.id);
  a.mp.setTransferMode(TransferMode::Reliable);
  ASSERT_EQ(a.mp.putPacket("last words"), Error::Ok);
  a.mp.setTransferMode(TransferMode::Unreliable);
  ASSERT_EQ(a.mp.putPacket("last shout"), Error::Ok);
  a.mp.poll();   // transmits both
  a.mp.close();  // then the close, right behind them on the wire
  // b reads the datagrams and the close together in its next poll.
  ASSERT_TRUE(c.runUntil([&] { return !b.connected.count(a.id); }));
  EXPECT_TRUE(b.got("last words"));
  EXPECT_TRUE(b.got("last shout"));
  for (const auto& r : b.inbox) EXPECT_EQ(r.peer, a.id);
}

TEST(MultiplayerApi, ErrorsFollowGodot) {
  MultiplayerPeer mp;
  auto pc = std::make_shared<PeerConnection>();
  EXPECT_EQ(mp.connectionStatus(), ConnectionStatus::Disconnected);
  EXPECT_EQ(mp.addPeer(pc, 2), Error::Unconfigured);
  EXPECT_EQ(mp.putPacket("x"), Error::Unconfigured);
  std::vector<std::uint8_t> out;
  EXPECT_EQ(mp.getPacket(out), Error::Unavailable);
  EXPECT_EQ(mp.createClient(1), Error::InvalidParameter);
  EXPECT_EQ(mp.createMesh(0), Error::InvalidParameter);
  EXPECT_EQ(mp.createMesh(-5), Error::InvalidParameter);
  EXPECT_EQ(mp.createMesh(2, {static_cast<TransferMode>(7)}), Error::InvalidParameter);

  ASSERT_EQ(mp.createServer(), Error::Ok);
  EXPECT_TRUE(mp.isServer());
  EXPECT_TRUE(mp.isServerRelaySupported());
  EXPECT_EQ(mp.uniqueId(), 1);
  EXPECT_EQ(mp.connectionStatus(), ConnectionStatus::Connected);
  EXPECT_EQ(mp.addPeer(pc, 1), Error::InvalidParameter);
  EXPECT_EQ(mp.addPeer(nullptr, 2), Error::InvalidParameter);
  EXPECT_EQ(mp.addPeer(pc, 2, -1), Error::InvalidParameter);
  mp.setRefuseNewConnections(true);
  EXPECT_EQ(mp.addPeer(pc, 2), Error::Unauthorized);
  mp.setRefuseNewConnections(false);
  pc->close();
  EXPECT_EQ(mp.addPeer(pc, 2), Error::InvalidParameter);  // not New
  auto fresh = std::make_shared<PeerConnection>();
  ASSERT_EQ(mp.addPeer(fresh, 2), Error::Ok) << mp.lastError();
  EXPECT_TRUE(mp.hasPeer(2));
  EXPECT_FALSE(mp.peers().at(2).connected);
  {
    // Godot's default unreliable_lifetime, on the channels for real (Godot's "maxPacketLifetime" key is ignored).
    const auto ch = mp.peers().at(2).channels;
    ASSERT_EQ(ch.size(), 3u);
    EXPECT_EQ(ch[0]->maxPacketLifeTime(), DataChannel::kUnset);
    EXPECT_EQ(ch[1]->maxPacketLifeTime(), 1);
    EXPECT_TRUE(ch[1]->isOrdered());
    EXPECT_EQ(ch[2]->maxPacketLifeTime(), 1);
    EXPECT_FALSE(ch[2]->isOrdered());
    EXPECT_EQ(ch[2]->id(), 3);
  }
  mp.setTransferChannel(1);  // no extra channels configured
  EXPECT_EQ(mp.putPacket("x"), Error::InvalidParameter);
  mp.setTransferChannel(0);
  mp.setTargetPeer(3);
  EXPECT_EQ(mp.putPacket("x"), Error::InvalidParameter);
  mp.setTargetPeer(0);
  EXPECT_EQ(mp.putPacket(std::string_view("\x07\x03\0\0\0\0x", 7)), Error::InvalidParameter);  // Godot's SYS
  EXPECT_EQ(mp.putPacket("plain"), Error::Ok);  // broadcast: the unopened channel's refusal is skipped
  mp.disconnectPeer(2, true);
  EXPECT_FALSE(mp.hasPeer(2));
  EXPECT_EQ(fresh->connectionState(), ConnectionState::Closed);

  MultiplayerPeer client;
  ASSERT_EQ(client.createClient(5), Error::Ok);
  EXPECT_EQ(client.connectionStatus(), ConnectionStatus::Connecting);
  EXPECT_FALSE(client.isServer());
  EXPECT_EQ(client.addPeer(std::make_shared<PeerConnection>(), 2), Error::InvalidParameter);
}

}  // namespace
}  // namespace rtcpeer::test
