// An echo server for many clients: it creates a client/server lobby on a signaling server (`rtcpeer serve`),
// prints the lobby's name, and answers every client that joins it (each client offers to the host, peer 1, as
// Godot's multiplayer_client.gd does). Every message arriving on any data channel goes back on the same channel,
// text as text and binary as binary. Clients: `rtcpeer chat --lobby NAME`, the browser page of
// `rtcpeer serve --web web` (open http://HOST:PORT/?lobby=NAME: a chat line comes back from peer 1, a file sent
// comes back and is verified), or any program speaking the same protocol.
//   rtcpeer_example_echo_server [--server ws://127.0.0.1:9080] [--port P] [--interfaces A,B] [--quiet]
// --port P: every connection shares the one UDP port P (Configuration::udpMux, see docs/SCALING.md); without it
// the operating system picks a port per connection.
// Runs until SIGINT/SIGTERM or until the signaling server closes the lobby. Build: in-tree only (the signaling
// client is not part of the installed package yet).
#include <rtcpeer/rtcpeer.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "signaling/client.hpp"

using namespace rtcpeer;

namespace {

volatile std::sig_atomic_t stopRequested = 0;

// Messages are read only while the channel's send buffer is below this: a client that sends faster than it
// reads is slowed down by its own receive window instead of growing the server's memory.
constexpr std::size_t kHighWater = 1 << 20;

struct Options {
  std::string server = "ws://127.0.0.1:9080";
  int port = 0;
  std::vector<std::string> interfaces;
  bool quiet = false;
};

std::vector<std::string> splitComma(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t start = 0; start <= s.size();) {
    const std::size_t end = std::min(s.find(',', start), s.size());
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool hasValue = i + 1 < argc;
    if (a == "--server" && hasValue) o.server = argv[++i];
    else if (a == "--port" && hasValue) o.port = std::atoi(argv[++i]);
    else if (a == "--interfaces" && hasValue) o.interfaces = splitComma(argv[++i]);
    else if (a == "--quiet" || a == "-q") o.quiet = true;
    else return false;
  }
  return o.port >= 0 && o.port <= 65535;
}

// Echoes what `channel` has received, as long as its send buffer has room.
void echo(DataChannel& channel, std::vector<std::uint8_t>& buffer) {
  while (channel.readyState() == ReadyState::Open && channel.bufferedAmount() < kHighWater &&
         channel.getPacket(buffer) == Error::Ok) {
    channel.setWriteMode(channel.wasStringPacket() ? WriteMode::Text : WriteMode::Binary);
    channel.putPacket(buffer);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr, "usage: %s [--server ws://HOST:PORT] [--port P] [--interfaces A,B] [--quiet]\n", argv[0]);
    return 2;
  }
  signaling::ClientOptions options;
  options.url = o.server;
  options.lobby = "";    // create the lobby: we are its host, peer 1
  options.mesh = false;  // client/server: each client connects to us only, never to the other clients
  options.rtc.interfaces = o.interfaces;
  if (o.port != 0) {  // one UDP port for every client: the connections share one socket (Configuration::udpMux)
    options.rtc.portRangeBegin = options.rtc.portRangeEnd = static_cast<std::uint16_t>(o.port);
    options.rtc.udpMux = true;
  }
  signaling::SignalingClient lobby(options);

  // Every channel of every client: the negotiated one made below and any the client opens itself.
  std::map<int, std::vector<std::shared_ptr<DataChannel>>> channels;
  std::size_t clientsSeen = 0;
  lobby.onJoined([&](const std::string& name, int) {
    std::printf("lobby %s\n", name.c_str());  // what clients join
    std::fflush(stdout);
  });
  lobby.onPeerConnected([&](int id, PeerConnection& pc) {
    ++clientsSeen;
    DataChannelInit init;  // the channel `rtcpeer chat` and the browser page use: negotiated, id 1
    init.negotiated = true;
    init.id = 1;
    channels[id].push_back(pc.createDataChannel("echo", init));
    pc.onDataChannelReceived([&channels, id](std::shared_ptr<DataChannel> c) { channels[id].push_back(std::move(c)); });
    if (!o.quiet) std::fprintf(stderr, "client %d joined (%zu so far)\n", id, clientsSeen);
  });
  lobby.onPeerDisconnected([&](int id) {
    channels.erase(id);
    if (!o.quiet) std::fprintf(stderr, "client %d left\n", id);
  });
  int exitCode = 0;
  bool closed = false;
  lobby.onClosed([&](int code, const std::string& reason) {
    closed = true;
    if (code != 1000) {
      std::fprintf(stderr, "echo_server: signaling closed (%d): %s\n", code,
                   reason.empty() ? lobby.lastError().c_str() : reason.c_str());
      exitCode = 1;
    }
  });
  std::signal(SIGINT, [](int) { stopRequested = 1; });
  std::signal(SIGTERM, [](int) { stopRequested = 1; });

  std::vector<std::uint8_t> buffer;
  while (!stopRequested && !closed) {
    lobby.poll();
    for (auto& [id, list] : channels) {
      std::erase_if(list, [](const auto& c) { return c->readyState() == ReadyState::Closed; });
      for (auto& c : list) echo(*c, buffer);
    }
    lobby.wait(std::chrono::milliseconds(20));
  }
  return exitCode;
}
