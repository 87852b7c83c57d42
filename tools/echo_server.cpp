// `rtcpeer echo-server`: examples/echo_server.cpp as a subcommand. It creates a client/server lobby on the
// signaling server, prints "lobby NAME" on stdout, answers every client that joins (`rtcpeer chat --lobby NAME`,
// the browser page) and sends every message back on the channel it came on, text as text. --port P puts every
// connection on the one UDP port P (docs/SCALING.md). Runs until SIGINT/SIGTERM or the lobby closes.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>

#include "common.hpp"
#include "signaling/client.hpp"

namespace rtcpeer::tools {
namespace {

volatile std::sig_atomic_t stopRequested = 0;
constexpr std::size_t kHighWater = 1 << 20;  // read a channel only while its send buffer is below this

struct EchoOptions {
  std::string server = "ws://127.0.0.1:9080";
  std::string caFile;
  bool insecure = false;
  std::uint16_t port = 0;
  std::vector<std::string> interfaces;
  IceOptions ice;
  bool quiet = false;
  int verbose = 0;
};

int runEcho(const EchoOptions& o) {
  setVerbosity(o.verbose, o.quiet);
  signaling::ClientOptions c;
  c.url = o.server;
  c.caFile = o.caFile;
  c.verifyCertificate = !o.insecure;
  c.mesh = false;  // client/server: clients connect to us (peer 1) only
  c.rtc.interfaces = o.interfaces;
  c.rtc.portRangeBegin = c.rtc.portRangeEnd = o.port;
  c.rtc.udpMux = o.port != 0;  // one socket for every client
  if (auto e = applyIceOptions(o.ice, c.rtc); !e.empty()) {
    std::fprintf(stderr, "rtcpeer: error: %s\n", e.c_str());
    return 1;
  }
  signaling::SignalingClient lobby(std::move(c));
  std::map<int, std::vector<std::shared_ptr<DataChannel>>> channels;
  lobby.onJoined([](const std::string& name, int) {
    std::printf("lobby %s\n", name.c_str());
    std::fflush(stdout);
  });
  lobby.onPeerConnected([&](int id, PeerConnection& pc) {
    DataChannelInit init;  // the channel of `rtcpeer chat` and the browser page
    init.negotiated = true;
    init.id = 1;
    channels[id].push_back(pc.createDataChannel("echo", init));
    pc.onDataChannelReceived([&channels, id](std::shared_ptr<DataChannel> ch) { channels[id].push_back(std::move(ch)); });
    if (!o.quiet) std::fprintf(stderr, "client %d joined\n", id);
  });
  lobby.onPeerDisconnected([&](int id) {
    channels.erase(id);
    if (!o.quiet) std::fprintf(stderr, "client %d left\n", id);
  });
  int code = 0;
  bool closed = false;
  lobby.onClosed([&](int closeCode, const std::string& reason) {
    closed = true;
    if (closeCode == 1000) return;
    std::fprintf(stderr, "rtcpeer: error: signaling server: %s\n",
                 closeCode == 1006 ? lobby.lastError().c_str() : reason.c_str());
    code = 1;
  });
  std::signal(SIGINT, [](int) { stopRequested = 1; });
  std::signal(SIGTERM, [](int) { stopRequested = 1; });
  std::vector<std::uint8_t> packet;
  while (!stopRequested && !closed) {
    lobby.poll();
    for (auto& [id, list] : channels) {
      std::erase_if(list, [](const auto& ch) { return ch->readyState() == ReadyState::Closed; });
      for (auto& ch : list) {
        while (ch->readyState() == ReadyState::Open && ch->bufferedAmount() < kHighWater &&
               ch->getPacket(packet) == Error::Ok) {
          ch->setWriteMode(ch->wasStringPacket() ? WriteMode::Text : WriteMode::Binary);
          ch->putPacket(packet);
        }
      }
    }
    lobby.wait(std::chrono::milliseconds(20));
  }
  return code;
}

}  // namespace

void addEchoServerCommand(CLI::App& app) {
  auto o = std::make_shared<EchoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "echo-server", "Create a client/server lobby, print its name, and echo every message of every client that "
                     "joins it (rtcpeer chat --lobby NAME, or the browser page)");
  cmd->add_option("-s,--server", o->server, "Signaling server URL, ws://HOST:PORT or wss://HOST:PORT")
      ->capture_default_str();
  cmd->add_option("--ca", o->caFile, "wss://: PEM file of CA certificates to trust instead of the system's")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--insecure", o->insecure, "wss://: accept any server certificate (encrypted, not authenticated)");
  cmd->add_option("-p,--port", o->port, "UDP port for every connection (0: the system picks one per connection)")
      ->capture_default_str();
  cmd->add_option("--interfaces", o->interfaces, "Gather candidates only on these interfaces or addresses")
      ->delimiter(',');
  addIceOptions(cmd, o->ice);
  cmd->add_flag("-q,--quiet", o->quiet, "Print only the lobby name and errors");
  cmd->add_flag("-v,--verbose", o->verbose, "Library log output (repeat for more)");
  cmd->final_callback([o] { throw CLI::RuntimeError(runEcho(*o)); });
}

}  // namespace rtcpeer::tools
