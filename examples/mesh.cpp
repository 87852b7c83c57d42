// A four-player mesh: each player is a SignalingClient that hands its lobby's connections to a MultiplayerPeer
// (Godot's WebRTCMultiplayerPeer), then a game loop that broadcasts and reads packets. The signaling server
// runs on a thread here so the example is self-contained; in a real game it is `rtcpeer serve` somewhere.
// Build: in-tree only (the signaling client is not part of the installed package yet).
#include <rtcpeer/rtcpeer.hpp>

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it (GCC 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "signaling/client.hpp"
#include "signaling/server.hpp"

using namespace rtcpeer;

struct Player {
  std::unique_ptr<signaling::SignalingClient> lobby;
  MultiplayerPeer game;
  std::set<int> heardFrom;

  Player(const std::string& url, const std::string& lobbyName) {
    signaling::ClientOptions options;
    options.url = url;
    options.lobby = lobbyName;                // empty: create a (mesh) lobby
    options.rtc.interfaces = {"127.0.0.1"};   // stay on loopback for the example
    lobby = std::make_unique<signaling::SignalingClient>(options);
    lobby->setMultiplayerPeer(&game);        // the whole hand-off: mesh lobby -> createMesh(id), addPeer(...)
    game.onPeerConnected([this](int id) {
      std::printf("player %d: peer %d connected\n", game.uniqueId(), id);
      game.setTargetPeer(id);                 // greet the newcomer, reliably
      game.setTransferMode(TransferMode::Reliable);
      game.putPacket("hello from " + std::to_string(game.uniqueId()));
    });
    game.onPeerDisconnected([this](int id) { std::printf("player %d: peer %d left\n", game.uniqueId(), id); });
  }

  void frame() {
    lobby->poll();
    game.poll();
    std::vector<std::uint8_t> packet;
    while (game.availablePacketCount() > 0) {
      const int from = game.packetPeer();
      game.getPacket(packet);
      heardFrom.insert(from);
      std::printf("player %d got \"%s\" from %d\n", game.uniqueId(), std::string(packet.begin(), packet.end()).c_str(),
                  from);
    }
  }
};

int main() {
  boost::asio::io_context io;
  signaling::ServerOptions serverOptions;
  serverOptions.port = 0;
  signaling::Server server(io, serverOptions);
  if (!server.start().ok()) return 1;
  std::thread serverThread([&] { io.run(); });
  const std::string url = "ws://127.0.0.1:" + std::to_string(server.port());

  std::vector<std::unique_ptr<Player>> players;
  players.push_back(std::make_unique<Player>(url, ""));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool done = false;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    for (auto& p : players) p->frame();
    // The first player created the lobby; the others join it once it has a name.
    if (players.size() < 4 && !players[0]->lobby->lobby().empty())
      players.push_back(std::make_unique<Player>(url, players[0]->lobby->lobby()));
    done = players.size() == 4;
    for (auto& p : players) done = done && p->heardFrom.size() == 3;
    players[0]->lobby->wait(std::chrono::milliseconds(2));
  }
  std::printf(done ? "all four players heard from the three others\n" : "the mesh did not form\n");
  players.clear();
  boost::asio::post(io, [&] { server.stop(); });
  serverThread.join();
  return done ? 0 : 1;
}
