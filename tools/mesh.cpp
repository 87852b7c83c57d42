// `rtcpeer mesh`: N terminals in one lobby of the signaling server become one MultiplayerPeer mesh (or, with
// --server-client, a server and relayed clients). Prints peer ids joining and leaving and, every --every seconds,
// each peer's round-trip time (pings on the unreliable channel); stdin lines are broadcast to everyone, and the
// end of stdin leaves the mesh.
// Packets: 'P' + u64 nonce (ping, answered by 'O' + the same nonce to its sender), 'C' + text (a chat line).
#include <poll.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>

#include "common.hpp"
#include "signaling/client.hpp"

namespace rtcpeer::tools {
namespace {

struct MeshOptions {
  std::string server = "ws://127.0.0.1:9080";
  std::string caFile;
  bool insecure = false;
  std::string lobby;
  bool serverClient = false;  // create a client/server lobby instead of a mesh
  std::vector<std::string> interfaces;
  IceOptions ice;
  double every = 2.0;  // seconds between RTT reports (and pings)
  bool quiet = false;
  int verbose = 0;
};

struct PeerRtt {
  std::uint64_t nonce = 0;  // outstanding ping
  Clock::time_point sentAt{};
  double lastMs = -1;
};

void printf_flush(const char* fmt, auto... args) {
  std::printf(fmt, args...);
  std::fflush(stdout);
}

int runMesh(const MeshOptions& o) {
  setVerbosity(o.verbose, o.quiet);
  signaling::ClientOptions c;
  c.url = o.server;
  c.caFile = o.caFile;
  c.verifyCertificate = !o.insecure;
  c.lobby = o.lobby;
  c.mesh = !o.serverClient;
  c.rtc.interfaces = o.interfaces;
  if (auto e = applyIceOptions(o.ice, c.rtc); !e.empty()) {
    std::fprintf(stderr, "rtcpeer: error: %s\n", e.c_str());
    return 1;
  }
  signaling::SignalingClient client(std::move(c));
  MultiplayerPeer mp;
  client.setMultiplayerPeer(&mp);  // mesh lobby -> createMesh(id); otherwise server (id 1) or client

  std::map<int, PeerRtt> peers;
  std::string failure;
  client.onJoined([&](const std::string& lobby, int id) {
    if (o.lobby.empty())
      printf_flush("lobby %s created (you are peer %d); others join with: rtcpeer mesh --lobby %s\n", lobby.c_str(),
                   id, lobby.c_str());
    else
      printf_flush("joined lobby %s as peer %d (%s)\n", lobby.c_str(), id, client.mesh() ? "mesh" : "client");
  });
  client.onClosed([&](int code, const std::string& reason) {
    if (code != 1000 && mp.connectionStatus() != ConnectionStatus::Connected)
      failure = "signaling server: " + (code == 1006 ? client.lastError() : reason);
  });
  mp.onPeerConnected([&](int id) {
    peers[id];
    printf_flush("peer %d joined (%zu connected)\n", id, peers.size());
  });
  mp.onPeerDisconnected([&](int id) {
    peers.erase(id);
    printf_flush("peer %d left (%zu connected)\n", id, peers.size());
  });

  auto nextReport = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.every));
  std::uint64_t nonce = 0;
  std::vector<std::uint8_t> packet, reply;
  std::string pending;
  bool stdinOpen = true;
  ConnectionStatus lastStatus = ConnectionStatus::Disconnected;
  for (;;) {
    client.poll();
    mp.poll();
    if (mp.connectionStatus() != lastStatus) {
      if (lastStatus == ConnectionStatus::Connecting && mp.connectionStatus() == ConnectionStatus::Disconnected)
        failure = "could not connect to the server peer: " + mp.lastError();
      lastStatus = mp.connectionStatus();
    }
    if (!failure.empty()) {
      std::fprintf(stderr, "rtcpeer: error: %s\n", failure.c_str());
      return 1;
    }
    while (mp.availablePacketCount() > 0) {
      const int from = mp.packetPeer();
      if (mp.getPacket(packet) != Error::Ok || packet.empty()) continue;
      if (packet[0] == 'P' && packet.size() == 9) {
        reply = packet;
        reply[0] = 'O';
        mp.setTargetPeer(from);
        mp.setTransferMode(TransferMode::Unreliable);
        mp.putPacket(reply);
      } else if (packet[0] == 'O' && packet.size() == 9) {
        auto it = peers.find(from);
        std::uint64_t n = 0;
        std::memcpy(&n, packet.data() + 1, 8);
        if (it != peers.end() && it->second.nonce == n) {
          it->second.lastMs = std::chrono::duration<double, std::milli>(Clock::now() - it->second.sentAt).count();
          it->second.nonce = 0;
        }
      } else if (packet[0] == 'C') {
        printf_flush("[%d] %.*s\n", from, static_cast<int>(packet.size() - 1),
                     reinterpret_cast<const char*>(packet.data() + 1));
      }
    }
    const auto now = Clock::now();
    if (now >= nextReport) {
      nextReport = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.every));
      if (!peers.empty()) {
        std::string line = "rtt:";
        char buf[64];
        for (auto& [id, r] : peers) {
          if (r.lastMs >= 0) std::snprintf(buf, sizeof buf, " %d=%.2fms", id, r.lastMs);
          else std::snprintf(buf, sizeof buf, " %d=?", id);
          line += buf;
        }
        if (!o.quiet) printf_flush("%s\n", line.c_str());
      }
      // One ping per peer (relayed ones too), on the unreliable channel: a lost ping shows as "?" once.
      for (auto& [id, r] : peers) {
        r.nonce = ++nonce;
        r.sentAt = now;
        std::uint8_t ping[9] = {'P'};
        std::memcpy(ping + 1, &r.nonce, 8);
        mp.setTargetPeer(id);
        mp.setTransferMode(TransferMode::Unreliable);
        mp.putPacket(std::span<const std::uint8_t>(ping, sizeof ping));
      }
    }
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    while (stdinOpen && ::poll(&pfd, 1, 0) > 0) {
      char buf[4096];
      const auto n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) {
        stdinOpen = false;
        break;
      }
      pending.append(buf, static_cast<std::size_t>(n));
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
        const std::string line = "C" + pending.substr(0, nl);
        pending.erase(0, nl + 1);
        mp.setTargetPeer(MultiplayerPeer::kTargetPeerBroadcast);
        mp.setTransferMode(TransferMode::Reliable);
        mp.putPacket(line);
      }
    }
    if (!stdinOpen) return 0;  // end of input: leave (the others see us go)
    client.wait(std::chrono::milliseconds(5));
  }
}

}  // namespace

void addMeshCommand(CLI::App& app) {
  auto o = std::make_shared<MeshOptions>();
  CLI::App* cmd = app.add_subcommand(
      "mesh", "Join a lobby as one MultiplayerPeer of a mesh (every terminal connects to every other); prints "
              "peers joining and leaving and their round-trip times; stdin lines go to everyone");
  cmd->add_option("-s,--server", o->server, "Signaling server URL, ws://HOST:PORT or wss://HOST:PORT")
      ->capture_default_str();
  cmd->add_option("--ca", o->caFile, "wss://: PEM file of CA certificates to trust instead of the system's")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--insecure", o->insecure, "wss://: accept any server certificate");
  cmd->add_option("-l,--lobby", o->lobby, "Lobby to join (default: create one and print its name)");
  cmd->add_flag("--server-client", o->serverClient,
                "When creating the lobby: a server (this terminal, peer 1) and clients relayed through it");
  cmd->add_option("--interfaces", o->interfaces, "Gather candidates only on these interfaces or addresses")
      ->delimiter(',');
  addIceOptions(cmd, o->ice);
  cmd->add_option("--every", o->every, "Seconds between pings / RTT lines")->check(CLI::Range(0.05, 3600.0))
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", o->quiet, "No RTT lines, only peers joining and leaving, chat and errors");
  cmd->add_flag("-v,--verbose", o->verbose, "Library log output (repeat for more)");
  cmd->final_callback([o] { throw CLI::RuntimeError(runMesh(*o)); });
}

}  // namespace rtcpeer::tools
