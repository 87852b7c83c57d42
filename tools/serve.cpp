// `rtcpeer serve`: the signaling server (Godot's webrtc_signaling protocol, the 4.x JSON one and the 3.x line one,
// chosen per connection) and, with --web, the browser demo; with --redis, one of several servers sharing lobbies.
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it (GCC 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>

#include "common.hpp"
#include "signaling/server.hpp"

namespace rtcpeer::tools {
namespace {

struct ServeOptions {
  signaling::ServerOptions server;
  double redisTtl = 3;
  double joinTimeout = 1;
  int verbose = 0;
};

int runServe(ServeOptions o) {
  setVerbosity(o.verbose, false);
  o.server.limits.messageBurst = 5 * o.server.limits.messagesPerSecond;  // the defaults: 200/s, bursts of 1000
  boost::asio::io_context io;
  signaling::ServerOptions options = o.server;
  if (!(o.redisTtl >= 0.3 && o.redisTtl <= 3600)) {
    std::fprintf(stderr, "rtcpeer: error: --redis-ttl must be between 0.3 and 3600 seconds\n");
    return 1;
  }
  options.redisTtl = std::chrono::milliseconds(static_cast<long long>(o.redisTtl * 1000));
  if (!(o.joinTimeout > 0 && o.joinTimeout <= 3600)) {
    std::fprintf(stderr, "rtcpeer: error: --join-timeout must be between 0 and 3600 seconds\n");
    return 1;
  }
  options.limits.joinTimeout = std::chrono::microseconds(static_cast<long long>(o.joinTimeout * 1e6));
  signaling::Server server(io, options);
  if (auto status = server.start(); !status.ok()) {
    std::fprintf(stderr, "rtcpeer: error: %s\n", status.reason().c_str());
    return 1;
  }
  int exitCode = 0;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  // The address is printed once the server accepts clients (with --redis: once Redis answered).
  server.whenReady([&](Status status) {
    if (!status.ok()) {
      std::fprintf(stderr, "rtcpeer: error: %s\n", status.reason().c_str());
      exitCode = 1;
      signals.cancel();
      io.stop();
      return;
    }
    const bool tls = !o.server.certificateFile.empty();
    const std::string host = o.server.address.find(':') != std::string::npos ? "[" + o.server.address + "]"
                                                                              : o.server.address;
    std::printf("signaling server on %s://%s:%u\n", tls ? "wss" : "ws", host.c_str(), server.port());
    if (!o.server.webRoot.empty())
      std::printf("browser demo at %s://%s:%u/\n", tls ? "https" : "http", host.c_str(), server.port());
    if (!o.server.redisUrl.empty())
      std::printf("sharing lobbies through %s as server %s\n", o.server.redisUrl.c_str(), server.serverId().c_str());
    std::fflush(stdout);
  });
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    server.stop();
    io.stop();
  });
  io.run();
  return exitCode;
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
  cmd->add_option("--join-timeout", o->joinTimeout, "Seconds a new WebSocket has to join a lobby")
      ->capture_default_str();
  cmd->add_option("--redis", o->server.redisUrl,
                  "redis://HOST[:PORT][/DB]: share lobbies with the other servers using this Redis (docs/SIGNALING.md)");
  cmd->add_option("--redis-ttl", o->redisTtl,
                  "Seconds a dead server's clients may stay in lobbies on the others (heartbeat TTL)")
      ->capture_default_str();
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
