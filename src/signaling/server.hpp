// The signaling server's I/O shell: Boost.Beast WebSockets (ws://, or wss:// with a certificate) around the Lobbies
// core, plus plain static file serving for the browser demo on the same port. Single-threaded: everything runs
// in the handlers of the io_context the application runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "signaling/lobbies.hpp"

namespace boost::asio {
class io_context;
}

namespace rtcpeer::signaling {

struct ServerOptions {
  std::string address = "127.0.0.1";  ///< listen address; the default keeps the server private to this machine
  std::uint16_t port = 9080;           ///< 0: any free port (see Server::port())
  std::string webRoot;                 ///< non-empty: GET requests that are not WebSocket upgrades serve files here
  std::string certificateFile;         ///< both set: TLS (wss:// and https://), PEM files
  std::string privateKeyFile;
  Limits limits;
  std::size_t maxQueuedBytes = 4 << 20;  ///< per socket: a peer that reads slower than this is dropped
  /// redis://HOST:PORT[/DB]: share lobbies with the other servers using this Redis (redis_cluster.hpp). Empty:
  /// a lone server. Needs a build with hiredis (RTCPEER_REDIS), else start() fails saying so.
  std::string redisUrl;
  /// How long a dead server's clients stay in their lobbies on the other servers, at most ttl + ttl/3.
  std::chrono::milliseconds redisTtl{3000};
};

/// Whether this build can share lobbies through Redis (built with hiredis).
bool serverHasRedis();

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options);
  ~Server();  ///< stops
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and starts accepting (the io_context does the rest). Fails with a reason (port in use, bad
  /// certificate, missing web root, a bad Redis URL...). With Redis, accepting starts once Redis is reached.
  Status start();
  /// Runs `callback` from the io_context once the server accepts clients (at once without Redis), or with the
  /// reason it never will (Redis unreachable at start; the server has stopped then).
  void whenReady(std::function<void(Status)> callback);
  /// This server's id among those sharing a Redis (empty without Redis).
  std::string serverId() const;
  /// Closes the listener and every socket; the io_context's run() returns once they are gone.
  void stop();
  std::uint16_t port() const;
  const Lobbies& lobbies() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtcpeer::signaling
