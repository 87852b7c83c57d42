// `rtcpeer serve`: the signaling server (Godot's webrtc_signaling protocol, the 4.x JSON one and the 3.x line one,
// chosen per connection) and, with --web, the browser demo.
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it (GCC 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "common.hpp"
#include "signaling/server.hpp"

namespace rtcpeer::tools {
namespace {

struct ServeOptions {
  signaling::ServerOptions server;
  int verbose = 0;
};

int runServe(ServeOptions o) {
  setVerbosity(o.verbose, false);
  o.server.limits.messageBurst = 5 * o.server.limits.messagesPerSecond;  // the defaults: 200/s, bursts of 1000
  boost::asio::io_context io;
  signaling::Server server(io, o.server);
  if (auto status = server.start(); !status.ok()) {
    std::fprintf(stderr, "rtcpeer: error: %s\n", status.reason().c_str());
    return 1;
  }
  const bool tls = !o.server.certificateFile.empty();
  const std::string host = o.server.address.find(':') != std::string::npos ? "[" + o.server.address + "]"
                                                                            : o.server.address;
  std::printf("signaling server on %s://%s:%u\n", tls ? "wss" : "ws", host.c_str(), server.port());
  if (!o.server.webRoot.empty())
    std::printf("browser demo at %s://%s:%u/\n", tls ? "https" : "http", host.c_str(), server.port());
  std::fflush(stdout);
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    server.stop();
    io.stop();
  });
  io.run();
  return 0;
}

}  // namespace

void addServeCommand(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Run a signaling server speaking Godot's webrtc_signaling demo protocols, 4.x JSON and 3.x lines "
      "(ws://, or wss:// with --cert)");
  cmd->add_option("-a,--address", o->server.address, "Listen address (0.0.0.0 to accept other machines)")
      ->capture_default_str();
  cmd->add_option("-p,--port", o->server.port, "Listen port (0: any free port, printed)")->capture_default_str();
  cmd->add_option("--web", o->server.webRoot, "Serve the browser demo (or any static files) from this directory")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--cert", o->server.certificateFile, "PEM certificate chain: serve wss:// and https://");
  cmd->add_option("--key", o->server.privateKeyFile, "PEM private key for --cert");
  cmd->add_option("--max-lobbies", o->server.limits.maxLobbies, "Lobby limit")->capture_default_str();
  cmd->add_option("--max-peers", o->server.limits.maxPeers, "Open WebSocket limit")->capture_default_str();
  cmd->add_option("--max-lobby-size", o->server.limits.maxLobbyMembers, "Members per lobby")->capture_default_str();
  // The host of a client/server lobby (an echo or game server) sends ~3 messages per client that joins.
  cmd->add_option("--message-rate", o->server.limits.messagesPerSecond,
                  "Messages per second a socket may send, sustained (bursts of five times that)")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  cmd->add_flag("-v,--verbose", o->verbose, "Log output (repeat for more)");
  // See transfer.cpp: the exit code travels through CLI11's RuntimeError so main() needs no dispatch code.
  cmd->final_callback([o] { throw CLI::RuntimeError(runServe(*o)); });
}

}  // namespace rtcpeer::tools
